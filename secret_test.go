package memo

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	secretA = []byte("0123456789abcdef-secret-A")
	secretB = []byte("0123456789abcdef-secret-B")
)

// recordingCodec is gob, recording every body it is asked to decode.
type recordingCodec struct {
	mu      sync.Mutex
	decoded [][]byte
}

func (r *recordingCodec) Marshal(v any) ([]byte, error) { return gobCodec{}.Marshal(v) }

func (r *recordingCodec) Unmarshal(b []byte, v any) error {
	r.mu.Lock()
	r.decoded = append(r.decoded, bytes.Clone(b))
	r.mu.Unlock()
	return gobCodec{}.Unmarshal(b, v)
}

// sawBody reports whether the codec was asked to decode body.
func (r *recordingCodec) sawBody(body []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.decoded {
		if bytes.Equal(d, body) {
			return true
		}
	}
	return false
}

// sealedProc is one process of the shared square, its Sharing edited by
// edit, with its executions and its StoreFailed errors recorded.
type sealedProc struct {
	f     func(context.Context, int) (int, error)
	c     *Cache[int, int]
	runs  atomic.Int64
	codec recordingCodec
	mu    sync.Mutex
	errs  []error
}

func newSealedProc(t *testing.T, st Store, edit func(*Sharing), opts ...Option) *sealedProc {
	t.Helper()
	p := &sealedProc{}
	sh := Sharing{Store: st, Name: "square", Poll: time.Hour, Timeout: time.Second, Codec: &p.codec}
	if edit != nil {
		edit(&sh)
	}
	opts = append([]Option{Share(sh), Observe(func(e Event[int, int]) {
		if e.Kind == StoreFailed {
			p.mu.Lock()
			p.errs = append(p.errs, e.Err)
			p.mu.Unlock()
		}
	})}, opts...)
	p.f, p.c = MemoizeCtx(func(_ context.Context, n int) (int, error) {
		p.runs.Add(1)
		return n * n, nil
	}, opts...)
	t.Cleanup(p.c.Close)
	return p
}

func (p *sealedProc) call(t *testing.T, n int) int {
	t.Helper()
	v, err := p.f(context.Background(), n)
	require.NoError(t, err)
	return v
}

func (p *sealedProc) failures() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// withSecret sets the Secret (and OldSecret, if given).
func withSecret(secret []byte, old ...[]byte) func(*Sharing) {
	return func(sh *Sharing) {
		sh.Secret = secret
		if len(old) > 0 {
			sh.OldSecret = old[0]
		}
	}
}

// gobBody is the body memo writes for v through gob.
func gobBody(t *testing.T, v int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, gob.NewEncoder(&b).Encode(v))
	return append([]byte{bodyCodec}, b.Bytes()...)
}

// get and set reach the memStore's bytes directly, as an attacker who can
// write to the store does.
func (m *memStore) get(ns, key string) stored {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.values[[2]string{ns, key}]
}

func (m *memStore) set(ns, key string, s stored) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[[2]string{ns, key}] = s
}

func TestSecretRejectsWhatItDidNotWrite(t *testing.T) {
	intFP := fingerprint(reflect.TypeFor[int]())
	k12 := mustKey(t, 12)
	for _, tc := range []struct {
		name string
		// plant puts the attacker's bytes under 12 in "square/0", and
		// returns the body they carry, which must never be decoded.
		plant func(t *testing.T, st *memStore) []byte
	}{
		{"written with another secret", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretB)).call(t, 12)
			return gobBody(t, 144)
		}},
		{"written without a secret", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, nil).call(t, 12)
			return gobBody(t, 144)
		}},
		{"forged, valid checksum and fingerprint", func(t *testing.T, st *memStore) []byte {
			body := gobBody(t, 999)
			b := frame("square/0", k12, intFP, 0, nil, body)
			_, _, err := unframe("square/0", k12, intFP, b)
			require.NoError(t, err, "the forgery passes the checks made without a secret")
			st.set("square/0", k12, stored{value: b})
			return body
		}},
		{"sealed form, MAC made up", func(t *testing.T, st *memStore) []byte {
			body := gobBody(t, 999)
			b := frame("square/0", k12, intFP, 0, []byte("a guess at the secret"), body)
			st.set("square/0", k12, stored{value: b})
			return body
		}},
		{"replayed from another version", func(t *testing.T, st *memStore) []byte {
			// Version 1's value of 12 (another generation of the
			// function's results), written back under Version 0's.
			f, c := Memoize(func(int) int { return 999 }, Share(Sharing{Store: st, Name: "square", Version: 1, Secret: secretA, Poll: time.Hour}))
			f(12)
			c.Close()
			st.set("square/0", k12, st.get("square/1", k12))
			return gobBody(t, 999)
		}},
		{"replayed from another namespace", func(t *testing.T, st *memStore) []byte {
			f, c := Memoize(func(int) int { return 999 }, Share(Sharing{Store: st, Name: "cube", Secret: secretA, Poll: time.Hour}))
			f(12)
			c.Close()
			st.set("square/0", k12, st.get("cube/0", k12))
			return gobBody(t, 999)
		}},
		{"moved from another key", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA)).call(t, 31)
			st.set("square/0", k12, st.get("square/0", mustKey(t, 31)))
			return gobBody(t, 961)
		}},
		{"expiry pushed back", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA), TTL(time.Minute)).call(t, 12)
			s := st.get("square/0", k12)
			s.value = bytes.Clone(s.value)
			s.value[10]++ // the frame's expiry, about 18 years on
			s.expires = time.Time{}
			st.set("square/0", k12, s)
			return gobBody(t, 144)
		}},
		{"body changed", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA)).call(t, 12)
			s := st.get("square/0", k12)
			body := gobBody(t, 999)
			s.value = append(bytes.Clone(s.value[:sealedLen]), body...)
			st.set("square/0", k12, s)
			return body
		}},
		{"MAC truncated", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA)).call(t, 12)
			s := st.get("square/0", k12)
			s.value = append(bytes.Clone(s.value[:34]), s.value[sealedLen:]...) // 16 of its 32 bytes
			st.set("square/0", k12, s)
			return gobBody(t, 144)
		}},
		{"MAC truncated, padded to a frame's length", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA)).call(t, 12)
			s := st.get("square/0", k12)
			s.value = append(append(bytes.Clone(s.value[:34]), s.value[sealedLen:]...), make([]byte, 16)...)
			st.set("square/0", k12, s)
			return gobBody(t, 144)
		}},
		{"shorter than a sealed frame", func(t *testing.T, st *memStore) []byte {
			newSealedProc(t, st, withSecret(secretA)).call(t, 12)
			s := st.get("square/0", k12)
			s.value = bytes.Clone(s.value[:40])
			st.set("square/0", k12, s)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			body := tc.plant(t, st)
			victim := newSealedProc(t, st, withSecret(secretA))
			assert.Equal(t, 144, victim.call(t, 12), "the right value, computed")
			assert.Equal(t, int64(1), victim.runs.Load(), "a miss: recomputed")
			if body != nil {
				assert.False(t, victim.codec.sawBody(body), "the planted value was never decoded")
			}
			ci := victim.c.CacheInfo()
			assert.Equal(t, 1, ci.StoreRejected)
			assert.Equal(t, 1, ci.StoreErrors)
			errs := victim.failures()
			require.Len(t, errs, 1, "reported once")
			assert.ErrorIs(t, errs[0], ErrUnauthenticated)
			t.Logf("reported: %v", errs[0])
			// Its own value replaced it, authenticated by its secret.
			_, _, err := unframe("square/0", k12, intFP, st.get("square/0", k12).value, secretA)
			assert.NoError(t, err)
		})
	}
}

func TestSecretExpiredValueWrittenBackIsAMiss(t *testing.T) {
	clk := newFakeClock(t0)
	st := newMemStore()
	st.now = clk.Now
	k12 := mustKey(t, 12)
	writer := newSealedProc(t, st, withSecret(secretA), TTL(time.Minute), Clock(clk.Now))
	writer.call(t, 12)
	old := st.get("square/0", k12)
	clk.Advance(2 * time.Minute)
	// Written back with a new expiry in the store: the frame's own, under
	// the MAC, has passed.
	st.set("square/0", k12, stored{value: old.value, expires: clk.Now().Add(time.Hour)})
	reader := newSealedProc(t, st, withSecret(secretA), TTL(time.Minute), Clock(clk.Now))
	assert.Equal(t, 144, reader.call(t, 12))
	assert.Equal(t, int64(1), reader.runs.Load(), "an expired value is a miss, whatever the store says")
	assert.Zero(t, reader.c.CacheInfo().StoreErrors, "as any expired value: not reported")
}

func TestSecretExpiryFromTheFrame(t *testing.T) {
	clk := newFakeClock(t0)
	st := newMemStore()
	st.now = clk.Now
	k12 := mustKey(t, 12)
	newSealedProc(t, st, withSecret(secretA), TTL(time.Minute), Clock(clk.Now)).call(t, 12)
	s := st.get("square/0", k12)
	s.expires = time.Time{} // the store forgets the expiry
	st.set("square/0", k12, s)
	reader := newSealedProc(t, st, withSecret(secretA), TTL(time.Hour), Clock(clk.Now))
	assert.Equal(t, 144, reader.call(t, 12))
	assert.Zero(t, reader.runs.Load(), "a hit from the store")
	clk.Advance(61 * time.Second)
	assert.Equal(t, 144, reader.call(t, 12))
	assert.Equal(t, int64(1), reader.runs.Load(), "the copy in memory expired with the frame's expiry")
}

func TestSecretRotation(t *testing.T) {
	st := newMemStore()
	intFP := fingerprint(reflect.TypeFor[int]())
	before := newSealedProc(t, st, withSecret(secretA))
	assert.Equal(t, 4, before.call(t, 2))

	// Rolled out: the new secret, the old one accepted for reading.
	during := newSealedProc(t, st, withSecret(secretB, secretA))
	assert.Equal(t, 4, during.call(t, 2))
	assert.Zero(t, during.runs.Load(), "the old secret's value is read")
	assert.Zero(t, during.c.CacheInfo().StoreErrors)
	assert.Equal(t, 9, during.call(t, 3))
	b := st.get("square/0", mustKey(t, 3)).value
	_, _, err := unframe("square/0", mustKey(t, 3), intFP, b, secretB)
	assert.NoError(t, err, "written with the new secret")
	_, _, err = unframe("square/0", mustKey(t, 3), intFP, b, secretA)
	assert.ErrorIs(t, err, ErrUnauthenticated, "not with the old one")

	// Done: the old secret is no longer accepted.
	after := newSealedProc(t, st, withSecret(secretB))
	assert.Equal(t, 9, after.call(t, 3))
	assert.Zero(t, after.runs.Load(), "the new secret's value is read")
	assert.Equal(t, 4, after.call(t, 2))
	assert.Equal(t, int64(1), after.runs.Load(), "the old secret's value is rejected")
	assert.Equal(t, 1, after.c.CacheInfo().StoreRejected)

	// A process not yet given the new secret rejects the new values.
	assert.Equal(t, 9, before.call(t, 3))
	assert.Equal(t, 1, before.c.CacheInfo().StoreRejected)
}

func TestSecretOversizedValueNotRead(t *testing.T) {
	st := newMemStore()
	k12 := mustKey(t, 12)
	body := append([]byte{bodyCodec}, make([]byte, 1000)...)
	st.set("square/0", k12, stored{value: frame("square/0", k12, fingerprint(reflect.TypeFor[int]()), 0, secretA, body)})
	p := newSealedProc(t, st, func(sh *Sharing) { sh.Secret = secretA; sh.MaxValue = 100 })
	assert.Equal(t, 144, p.call(t, 12))
	assert.Equal(t, int64(1), p.runs.Load())
	errs := p.failures()
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], "larger than MaxValue (100)")
	assert.False(t, p.codec.sawBody(body[1:]))
}

func TestSecretRefusals(t *testing.T) {
	st := newMemStore()
	for name, tc := range map[string]struct {
		sh   Sharing
		want string
	}{
		"short secret":      {Sharing{Store: st, Name: "f", Secret: []byte("short")}, "memo: Share: a Secret of 5 bytes is too short; give at least 16 random bytes"},
		"empty secret":      {Sharing{Store: st, Name: "f", Secret: []byte{}}, "memo: Share: a Secret of 0 bytes is too short; give at least 16 random bytes"},
		"short old secret":  {Sharing{Store: st, Name: "f", Secret: secretA, OldSecret: []byte("x")}, "memo: Share: an OldSecret of 1 bytes is too short; give at least 16 random bytes"},
		"old without a new": {Sharing{Store: st, Name: "f", OldSecret: secretA}, "memo: Share was given an OldSecret without a Secret"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.want, func() { Memoize(func(int) int { return 0 }, Share(tc.sh)) })
		})
	}
}

func TestSecretIsCopied(t *testing.T) {
	st := newMemStore()
	secret := bytes.Clone(secretA)
	a := newSealedProc(t, st, withSecret(secret))
	a.call(t, 5)
	secret[0] ^= 1 // the caller reuses its slice
	b := newSealedProc(t, st, withSecret(secretA))
	assert.Equal(t, 25, b.call(t, 5))
	assert.Zero(t, b.runs.Load())
	assert.Equal(t, 36, a.call(t, 6))
	assert.Equal(t, 36, b.call(t, 6))
	assert.Zero(t, b.c.CacheInfo().StoreErrors, "a kept its own copy of the secret")
}

// limitedStore is a memStore whose Get records ReadLimit's bound and refuses
// every value longer, as a store that can read lengths first does.
type limitedStore struct {
	*memStore
	limits []int
}

func (l *limitedStore) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	n, ok := ReadLimit(ctx)
	if !ok {
		n = -1
	}
	l.mu.Lock()
	l.limits = append(l.limits, n)
	v, found := l.values[[2]string{ns, key}]
	l.mu.Unlock()
	if found && ok && len(v.value) > n {
		return nil, time.Time{}, false, fmt.Errorf("%w: %d bytes", ErrValueTooLarge, len(v.value))
	}
	return l.memStore.Get(ctx, ns, key)
}

func TestReadLimitGivenToTheStore(t *testing.T) {
	st := &limitedStore{memStore: newMemStore()}
	k12 := mustKey(t, 12)
	st.set("square/0", k12, stored{value: make([]byte, 5000)})
	p := newSealedProc(t, st, func(sh *Sharing) { sh.MaxValue = 1000 })
	assert.Equal(t, 144, p.call(t, 12))
	errs := p.failures()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], ErrValueTooLarge, "the store's refusal, reported")
	assert.False(t, p.c.tier.paused(), "a value too large does not pause the store")
	assert.Equal(t, 4, p.call(t, 2))
	assert.NotEmpty(t, st.get("square/0", mustKey(t, 2)).value, "the next execution used the store")
	st.mu.Lock()
	defer st.mu.Unlock()
	require.NotEmpty(t, st.limits)
	for _, n := range st.limits {
		assert.Equal(t, 1000+sealedLen, n, "every Get is told MaxValue and a frame")
	}
	_, ok := ReadLimit(context.Background())
	assert.False(t, ok)
}
