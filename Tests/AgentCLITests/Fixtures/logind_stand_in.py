#!/usr/bin/python3
"""A stand-in for systemd-logind's shutdown interface on a private bus, for the graceful node
shutdown tests on a host without systemd: it owns org.freedesktop.login1, hands out delay
inhibitor locks over the real dbus-daemon (descriptor passing), answers InhibitDelayMaxUSec,
and emits PrepareForShutdown(true) on SIGUSR1, PrepareForShutdown(false) on SIGUSR2. Each lock is a pipe:
its end coming back closed is the release, printed with the time.

Prints one line per event: "inhibit WHO WHAT MODE SENDER", "released N", "signal true|false".
Usage: logind_stand_in.py DELAY_MAX_SECONDS (DBUS_SYSTEM_BUS_ADDRESS names the bus)."""
import os
import signal
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

    @dbus.service.method(MANAGER, in_signature="ssss", out_signature="h", sender_keyword="sender")
    def Inhibit(self, what, who, why, mode, sender=None):
        self.locks += 1
        number = self.locks
        held, given = os.pipe()
        say(f"inhibit {who} {what} {mode} {sender}")

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
        raise dbus.exceptions.DBusException("org.freedesktop.DBus.Error.UnknownProperty", f"no property {name}")

    @dbus.service.signal(MANAGER, signature="b")
    def PrepareForShutdown(self, active):
        say(f"signal {'true' if active else 'false'}")


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
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    say(f"ready {bus.get_unique_name()} {name.get_name()}")
    loop.run()


if __name__ == "__main__":
    main()
