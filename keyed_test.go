package memo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoize2And3(t *testing.T) {
	runs := 0
	add, c2 := Memoize2(func(a int, b string) string { runs++; return fmt.Sprint(a, b) })
	assert.Equal(t, "1x", add(1, "x"))
	assert.Equal(t, "1x", add(1, "x"))
	assert.Equal(t, "2x", add(2, "x"))
	assert.Equal(t, 2, runs)
	assert.True(t, c2.Forget(Args2[int, string]{1, "x"}))
	assert.Equal(t, 1, c2.CacheInfo().CurrSize)

	boom := errors.New("boom")
	div, c2e := Memoize2Err(func(a, b int) (int, error) {
		if b == 0 {
			return 0, boom
		}
		return a / b, nil
	})
	v, err := div(6, 3)
	assert.NoError(t, err)
	assert.Equal(t, 2, v)
	_, err = div(1, 0)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, c2e.CacheInfo().CurrSize)

	ctxSum, c2c := Memoize2Ctx(func(_ context.Context, a, b int) (int, error) { return a + b, nil })
	v, _ = ctxSum(context.Background(), 2, 3)
	assert.Equal(t, 5, v)
	v, _ = ctxSum(context.Background(), 2, 3)
	assert.Equal(t, 5, v)
	assert.Equal(t, 1, c2c.CacheInfo().Hits)

	vol, c3 := Memoize3(func(a, b, c int) int { return a * b * c }, MaxSize(1))
	assert.Equal(t, 24, vol(2, 3, 4))
	assert.Equal(t, 24, vol(2, 3, 4))
	assert.Equal(t, 30, vol(2, 3, 5))
	ci := c3.CacheInfo()
	assert.Equal(t, counts{Hits: 1, Misses: 2, Evictions: 1}, countsOf(ci))

	join3, c3e := Memoize3Err(func(a, b, c string) (string, error) { return a + b + c, nil })
	s, _ := join3("a", "b", "c")
	assert.Equal(t, "abc", s)
	_, _ = join3("ab", "c", "")
	assert.Equal(t, 2, c3e.CacheInfo().CurrSize, `("a","b","c") and ("ab","c","") are two keys`)

	join3c, _ := Memoize3Ctx(func(_ context.Context, a, b, c string) (string, error) { return a + b + c, nil })
	s, _ = join3c(context.Background(), "x", "y", "z")
	assert.Equal(t, "xyz", s)

	assert.PanicsWithValue(t, "memo: Memoize2 was given a nil function to memoize (fn)", func() { Memoize2[int, int, int](nil) })
	assert.PanicsWithValue(t, "memo: Memoize3Ctx was given a nil function to memoize (fn)", func() { Memoize3Ctx[int, int, int, int](nil) })
}

type celsius float64

func TestUntypedNumbersShareAnEntry(t *testing.T) {
	var seen []any
	f, c := Memoize(func(x any) string { seen = append(seen, x); return fmt.Sprintf("%T", x) })
	same := []any{1, int8(1), int16(1), int32(1), int64(1), uint(1), uint8(1), uint16(1), uint32(1), uint64(1),
		uintptr(1), 1.0, float32(1), complex(1, 0), complex64(complex(1, 0)), celsius(1)}
	for _, x := range same {
		assert.Equal(t, "int", f(x), "f(%T(1)) answers from the entry of f(1)", x)
	}
	assert.Equal(t, []any{1}, seen, "fn ran once, on the argument it was first called with")
	assert.Equal(t, 1, c.CacheInfo().CurrSize)
	assert.True(t, c.Forget(1.0), "Forget normalises its key too")

	for _, tc := range []struct {
		name string
		a, b any
		same bool
	}{
		{"2^53+1 vs float64(2^53)", int64(1<<53 + 1), float64(1 << 53), false},
		{"2^53 vs float64(2^53)", int64(1 << 53), float64(1 << 53), true},
		{"max uint64 vs float 2^64", uint64(math.MaxUint64), math.Pow(2, 64), false},
		{"uint64 2^63 vs float 2^63", uint64(1 << 63), math.Pow(2, 63), true},
		{"0.5 vs float32(0.5)", 0.5, float32(0.5), true},
		{"0.1 vs float32(0.1)", 0.1, float32(0.1), false},
		{"-0.0 vs 0", math.Copysign(0, -1), 0, true},
		{"true vs 1", true, 1, false},
		{"string vs number", "1", 1, false},
		{"1+2i vs complex64(1+2i)", complex(1, 2), complex64(complex(1, 2)), true},
		{"1+2i vs 1", complex(1, 2), 1, false},
		{"celsius(1.5) vs 1.5", celsius(1.5), 1.5, true},
		{"+Inf vs float32 +Inf", math.Inf(1), float32(math.Inf(1)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := Memoize(func(x any) int { return 0 })
			f(tc.a)
			f(tc.b)
			want := 2
			if tc.same {
				want = 1
			}
			assert.Equal(t, want, c.CacheInfo().CurrSize)

			ft, ct := Memoize(func(x any) int { return 0 }, Typed())
			ft(tc.a)
			ft(tc.b)
			if fmt.Sprintf("%T", tc.a) != fmt.Sprintf("%T", tc.b) {
				want = 2
			}
			assert.Equal(t, want, ct.CacheInfo().CurrSize, "Typed keeps different types apart")
		})
	}
}

// kelvin is a number type with a method, for keys of a non-empty interface
// type; celsius gets the same method below.
type kelvin int

func (k kelvin) String() string  { return fmt.Sprintf("%dK", int(k)) }
func (c celsius) String() string { return fmt.Sprintf("%gC", float64(c)) }

// TestNonEmptyInterfaceKeysKeepTypes: numbers are normalised only in empty
// interfaces; in a fmt.Stringer they keep their types, as documented on
// Typed.
func TestNonEmptyInterfaceKeysKeepTypes(t *testing.T) {
	f, c := Memoize(func(s fmt.Stringer) string { return s.String() })
	assert.Equal(t, "1K", f(kelvin(1)))
	assert.Equal(t, "1C", f(celsius(1)))
	assert.Equal(t, 2, c.CacheInfo().CurrSize)
	assert.Nil(t, numberSlots[fmt.Stringer](false))
}

func TestTypedKeepsTypesApart(t *testing.T) {
	f, c := Memoize(func(x any) string { return fmt.Sprintf("%T", x) }, Typed())
	assert.Equal(t, "int", f(1))
	assert.Equal(t, "float64", f(1.0))
	assert.Equal(t, "uint8", f(uint8(1)))
	assert.Equal(t, 3, c.CacheInfo().CurrSize)
	assert.True(t, c.Parameters().Typed)
}

func TestNumbersInsideMultiArgumentKeys(t *testing.T) {
	f, c := Memoize2(func(a any, b int) int { return b })
	f(1, 2)
	f(1.0, 2)
	f(int64(1), 2)
	f(1, 3)
	assert.Equal(t, 2, c.CacheInfo().CurrSize)
	ft, ct := Memoize2(func(a any, b int) int { return b }, Typed())
	ft(1, 2)
	ft(1.0, 2)
	assert.Equal(t, 2, ct.CacheInfo().CurrSize)

	type nested struct {
		X [2]any
		Y struct{ Z any }
	}
	g, cg := Memoize(func(n nested) int { return 0 })
	g(nested{X: [2]any{1, "a"}, Y: struct{ Z any }{2.0}})
	g(nested{X: [2]any{1.0, "a"}, Y: struct{ Z any }{uint8(2)}})
	assert.Equal(t, 1, cg.CacheInfo().CurrSize)
}

func TestConcreteKeysPayNothing(t *testing.T) {
	_, ci := Memoize(func(int) int { return 0 })
	_, cs := Memoize2(func(string, float64) int { return 0 })
	assert.Nil(t, ci.slots)
	assert.Nil(t, cs.slots)
	assert.False(t, cs.check)
	_, ca := Memoize(func(any) int { return 0 })
	assert.Equal(t, []uintptr{0}, ca.slots)
	_, cat := Memoize(func(any) int { return 0 }, Typed())
	assert.Nil(t, cat.slots)
}

func TestMemoizeKeyed(t *testing.T) {
	runs := 0
	byLen := func(xs []int) (string, error) {
		if xs == nil {
			return "", errors.New("memo: argument 1 ([]int): nil not allowed")
		}
		return fmt.Sprint(xs), nil
	}
	sum, c := MemoizeKeyed(func(xs []int) (int, error) {
		runs++
		t := 0
		for _, x := range xs {
			t += x
		}
		return t, nil
	}, byLen)
	v, err := sum([]int{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, 6, v)
	v, _ = sum([]int{1, 2, 3})
	assert.Equal(t, 6, v)
	assert.Equal(t, 1, runs)
	_, err = sum(nil)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "memo:"))
	assert.Equal(t, 1, runs, "fn is not called when the key cannot be built")
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 1, Misses: 1}, countsOf(ci), "a bad key leaves no trace")
	assert.Nil(t, c.Unwrapped())

	ctxLen, cc := MemoizeKeyedCtx(func(ctx context.Context, m map[string]int) (int, error) { return len(m), ctx.Err() },
		func(m map[string]int) (int, error) { return len(m), nil })
	n, _ := ctxLen(context.Background(), map[string]int{"a": 1})
	assert.Equal(t, 1, n)
	n, _ = ctxLen(context.Background(), map[string]int{"b": 1})
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, cc.CacheInfo().Hits)

	assert.PanicsWithValue(t, "memo: MemoizeKeyed was given a nil function to memoize (fn)", func() { MemoizeKeyed[int, int, int](nil, nil) })
	id := func(n int) (int, error) { return n, nil }
	assert.PanicsWithValue(t, "memo: MemoizeKeyed was given a nil key function (key)", func() { MemoizeKeyed[int, int, int](id, nil) })
	assert.PanicsWithValue(t, "memo: MemoizeKeyedCtx was given a nil key function (key)",
		func() {
			MemoizeKeyedCtx[int, int, int](func(_ context.Context, n int) (int, error) { return n, nil }, nil)
		})
}

func TestKeyedHitAllocatesNothing(t *testing.T) {
	type req struct {
		ID   int
		Tags []string
	}
	f, _ := MemoizeKeyed(func(r req) (int, error) { return r.ID, nil }, func(r req) (int, error) { return r.ID, nil })
	r := req{ID: 7, Tags: []string{"x"}}
	f(r)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f(r) }))
}
