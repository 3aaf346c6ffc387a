#!/usr/bin/python3
"""A stand-in for systemd-logind's shutdown interface on a private bus, for the graceful node
shutdown tests on a host without systemd: it owns org.freedesktop.login1, hands out delay
inhibitor locks over the real dbus-daemon (descriptor passing), answers InhibitDelayMaxUSec,
and emits PrepareForShutdown(true) on SIGUSR1, PrepareForShutdown(false) on SIGUSR2. On SIGHUP
it sends, from a connection of its own, a PrepareForShutdown(true) in big-endian byte order
straight to the last client that took a lock (what any local user can do). Each lock is a pipe:
its end coming back closed is the release, printed with the time.

Prints one line per event: "inhibit WHO WHAT MODE SENDER", "released N", "signal true|false".
Usage: logind_stand_in.py DELAY_MAX_SECONDS (DBUS_SYSTEM_BUS_ADDRESS names the bus)."""
import os
import signal
import socket
import struct
import sys
import time

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

MANAGER = "org.freedesktop.login1.Manager"


def say(line):
    print(f"{time.monotonic():.3f} {line}", flush=True)


class Manager(dbus.service.Object):
    def __init__(self, bus, delay_max_seconds):
        super().__init__(bus, "/org/freedesktop/login1")
        self.delay_max = dbus.UInt64(delay_max_seconds * 1_000_000)
        self.locks = 0
        self.preparing = False
        self.last_client = None

    @dbus.service.method(MANAGER, in_signature="ssss", out_signature="h", sender_keyword="sender")
    def Inhibit(self, what, who, why, mode, sender=None):
        self.locks += 1
        number = self.locks
        held, given = os.pipe()
        say(f"inhibit {who} {what} {mode} {sender}")
        self.last_client = sender

        def released(descriptor, condition):
            say(f"released {number}")
            os.close(descriptor)
            return False

        GLib.io_add_watch(held, GLib.IO_HUP | GLib.IO_ERR, released)
        lock = dbus.types.UnixFd(given)
        os.close(given)
        return lock

    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        if interface == MANAGER and name == "InhibitDelayMaxUSec":
            return dbus.UInt64(self.delay_max, variant_level=1)
        if interface == MANAGER and name == "PreparingForShutdown":
            return dbus.Boolean(self.preparing, variant_level=1)
        raise dbus.exceptions.DBusException("org.freedesktop.DBus.Error.UnknownProperty", f"no property {name}")

    @dbus.service.signal(MANAGER, signature="b")
    def PrepareForShutdown(self, active):
        self.preparing = bool(active)
        say(f"signal {'true' if active else 'false'}")


def big_endian_signal(address, destination):
    """A PrepareForShutdown(true) signal in big-endian byte order, sent over a raw connection."""
    path = address.split("unix:path=", 1)[1].split(",")[0]
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    connection.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    connection.recv(256)
    connection.sendall(b"BEGIN\r\n")

    def pad(data, alignment):
        return data + b"\0" * (-len(data) % alignment)

    def message(kind, serial, fields, body, signature):
        header = b""
        for code, letter, value in fields:
            header = pad(header, 8) + bytes([code, 1, ord(letter), 0])
            header = pad(header, 4) + struct.pack(">I", len(value)) + value.encode() + b"\0"
        if signature:
            header = pad(header, 8) + bytes([8, 1, ord("g"), 0, len(signature)]) + signature.encode() + b"\0"
        start = b"B" + bytes([kind, 0, 1]) + struct.pack(">II", len(body), serial) + struct.pack(">I", len(header))
        return pad(start + header, 8) + body

    hello = message(1, 1, [(1, "o", "/org/freedesktop/DBus"), (2, "s", "org.freedesktop.DBus"), (3, "s", "Hello"),
                           (6, "s", "org.freedesktop.DBus")], b"", "")
    connection.sendall(hello)
    time.sleep(0.2)
    forged = message(4, 2, [(1, "o", "/org/freedesktop/login1"), (2, "s", MANAGER), (3, "s", "PrepareForShutdown"),
                            (6, "s", destination)], struct.pack(">I", 1), "b")
    connection.sendall(forged)
    time.sleep(0.5)
    connection.close()
    say(f"big-endian signal sent to {destination}")


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    name = dbus.service.BusName("org.freedesktop.login1", bus)
    manager = Manager(bus, int(sys.argv[1]))
    loop = GLib.MainLoop()

    def shutdown():
        manager.PrepareForShutdown(True)
        return True

    def cancel():
        manager.PrepareForShutdown(False)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, shutdown)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, cancel)
    def forge():
        if manager.last_client:
            big_endian_signal(os.environ["DBUS_SYSTEM_BUS_ADDRESS"], manager.last_client)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGHUP, forge)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    say(f"ready {bus.get_unique_name()} {name.get_name()}")
    loop.run()


if __name__ == "__main__":
    main()
