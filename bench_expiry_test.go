package memo

import (
	"testing"
	"time"

	"github.com/gomemo/memo/internal/trace"
)

// BenchmarkHitTTL measures BenchmarkHit's Memoize hits on a cache whose
// entries expire, reading the real clock.
func BenchmarkHitTTL(b *testing.B) {
	keys := trace.Zipf(benchKeys, 1024, trace.Seed)
	f := filled(MaxSize(1024), TTL(time.Hour))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f(keys[i%benchKeys])
	}
}

// BenchmarkHitExpireAfterAccess is BenchmarkHitTTL with a sliding expiry:
// every hit moves its entry's expiry.
func BenchmarkHitExpireAfterAccess(b *testing.B) {
	keys := trace.Zipf(benchKeys, 1024, trace.Seed)
	f := filled(MaxSize(1024), ExpireAfterAccess(time.Hour))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f(keys[i%benchKeys])
	}
}
