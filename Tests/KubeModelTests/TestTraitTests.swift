import Foundation
import IotkubeTestSupport
import Testing

/// The test-support traits do what the slow suites rely on.
@Suite(.ownThread) struct OwnThreadTraitTests {
    @Test func aSynchronousTestRunsOnAThreadOfItsOwn() {
        #expect(Thread.current.name == String("aSynchronousTestRunsOnAThreadOfItsOwn()".prefix(15)), "\(Thread.current.name ?? "unnamed")")
    }

    @Test(arguments: [1, 2]) func everyCaseToo(_ number: Int) {
        #expect(Thread.current.name == "everyCaseToo(_:", "case \(number): \(Thread.current.name ?? "unnamed")")
    }
}

@Suite struct HeavyTestSlotsTests {
    @Test func noMoreThanTheWidthRunAtOnceAndWaitersGoInOrder() async {
        let slots = HeavyTestSlots(width: 2)
        let record = OrderRecord()
        await slots.acquire()
        await slots.acquire()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    await slots.acquire()
                    await record.append(index)
                }
                // Each waiter queues before the next one starts.
                while await slots.waitingCount < index + 1 { await Task.yield() }
            }
            #expect(await record.order.isEmpty, "a third test ran while two held the slots")
            // Each release lets exactly the longest waiter in.
            for released in 1...3 {
                await slots.release()
                while await record.order.count < released { await Task.yield() }
                #expect(await slots.waitingCount == 3 - released)
            }
            await group.waitForAll()
        }
        #expect(await record.order == [0, 1, 2])
    }
}

private actor OrderRecord {
    var order: [Int] = []
    func append(_ value: Int) { order.append(value) }
}

