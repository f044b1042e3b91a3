package raftgroup_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// BenchmarkCommit measures the latency of one ledger change (a grant)
// committed by three voters over TCP on this machine, each with its own
// Pebble store (every write fsync'd): from Propose on the leader to the
// answer, with 1 and with 50 concurrent proposers. It reports p50 and p99
// and the changes per second the group sustained.
func BenchmarkCommit(b *testing.B) {
	for _, clients := range []int{1, 50} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ms := &members{alive: map[string]string{}}
			var servers []*server
			for i := range 3 {
				servers = append(servers, start(b, ms, fmt.Sprintf("b%d", i+1), freeAddr(b), "", 3))
			}
			l := leader(b, servers...)
			propose(b, servers, createAccount("acct_b", 1))
			var (
				mu   sync.Mutex
				lat  []time.Duration
				next int
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			began := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						if next >= b.N {
							mu.Unlock()
							return
						}
						i := next
						next++
						mu.Unlock()
						data, _ := proto.Marshal(grant("acct_b", fmt.Sprintf("c%d-%d", c, i), 1))
						t0 := time.Now()
						if _, err := l.g.Propose(data, 10*time.Second); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			took := time.Since(began)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(len(lat))/took.Seconds(), "changes/s")
			}
		})
	}
}
