package dispatch

import "testing"

// Defect 2: a commit that failed across a rebalance must not make the fresh partition commit -1
// (which kafka-go sends as 0, replaying the whole partition).
func TestRequeueAfterReassignDoesNotRewind(t *testing.T) {
	o := newOffsets()
	o.Add(0, 10)
	o.Done(0, 10)
	c := o.Committable()
	o.Add(0, 5) // the partition was re-assigned: fetching restarts at 5
	o.Requeue(c)
	for p, off := range o.Committable() {
		if off < 0 {
			t.Fatalf("partition %d committable offset %d after a requeue across a rebalance", p, off)
		}
	}
}
