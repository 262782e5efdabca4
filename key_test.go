package memo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	r1 "math/rand"
	r2 "math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Types the key tests use; the names start with key so they stay apart from
// the rest of the package's tests.
type (
	keyCelsius float64
	keyID      string
	keyRaw     []byte
	keyPointA  struct{ X, Y int }
	keyPointB  struct{ X, Y int }
	keyHidden  struct {
		n int
		s string
		f float32
		b []byte
		m map[string][]int
		p *int
		i any
		a [2]uint8
	}
	keyWithAny   struct{ V any }
	keyWithFunc  struct{ F func(int) int }
	keyWithBlank struct {
		A int
		_ int
		B int
	}
	keyNode struct {
		Next *keyNode
		V    int
	}
	keyWhen     struct{ When time.Time }
	keyHiddenAt struct{ when time.Time }
	keyStamped  struct {
		time.Time
		Name string
	}
	keyWithLoc struct{ L *time.Location }
	// keyVersioned chooses its key through MarshalBinary: only n counts.
	keyVersioned struct {
		n     int
		cache *int
	}
	keyBadMarshal   struct{}
	keyPanicMarshal struct{ p *int }
	// keyShared lets a pointer to a struct and a pointer to its first field,
	// which share an address, sit on one path.
	keyShared struct {
		First keyLeaf
		Back  *keyLeaf
	}
	keyLeaf  struct{ N int }
	keyChain struct {
		Next *keyChain
		End  *keyShared
	}
	keyGen[T any] struct{ V T }
	// keyNest nests by value, through interfaces only.
	keyNest struct{ Next any }
	// keyDAG shares its sub-values when L == R.
	keyDAG      struct{ L, R *keyDAG }
	keyBigField struct{ n big.Int }
)

func (v keyVersioned) MarshalBinary() ([]byte, error) {
	return []byte(strconv.Itoa(v.n)), nil
}

func (keyBadMarshal) MarshalBinary() ([]byte, error) { return nil, errors.New("no bytes today") }

func (k keyPanicMarshal) MarshalBinary() ([]byte, error) { return []byte{byte(*k.p)}, nil }

func keyIntPtr(n int) *int { return &n }

func keyMustOf(t testing.TB, typed bool, args ...any) string {
	t.Helper()
	var k string
	var err error
	if typed {
		k, err = TypedKeyOf(args...)
	} else {
		k, err = KeyOf(args...)
	}
	require.NoError(t, err)
	require.NotEmpty(t, k)
	require.Equal(t, byte(KeyVersion), k[0], "the first byte is the version")
	return k
}

// keyArgs spells an argument list.
func keyArgs(args ...any) []any { return args }

func TestKeyOfPairs(t *testing.T) {
	nan2 := math.Float64frombits(0x7FF0000000000123)
	negNaN := math.Copysign(math.NaN(), -1)
	instant := time.Date(2024, 3, 1, 12, 30, 0, 5, time.UTC)
	paris := time.FixedZone("CET", 3600)
	now := time.Now()
	x, y := 7, 7
	var nilInts []int
	var nilMap map[string]int

	tests := []struct {
		name    string
		a, b    []any
		untyped bool // KeyOf(a...) == KeyOf(b...)
		typed   bool // TypedKeyOf(a...) == TypedKeyOf(b...)
	}{
		// Numbers.
		{name: "int vs int64", a: keyArgs(1), b: keyArgs(int64(1)), untyped: true},
		{name: "int vs uint8", a: keyArgs(1), b: keyArgs(uint8(1)), untyped: true},
		{name: "int vs float64", a: keyArgs(1), b: keyArgs(1.0), untyped: true},
		{name: "int vs float32", a: keyArgs(1), b: keyArgs(float32(1)), untyped: true},
		{name: "int vs complex128", a: keyArgs(1), b: keyArgs(complex(1, 0)), untyped: true},
		{name: "int vs complex64", a: keyArgs(1), b: keyArgs(complex64(complex(1, 0))), untyped: true},
		{name: "int vs uintptr", a: keyArgs(1), b: keyArgs(uintptr(1)), untyped: true},
		{name: "negative across types", a: keyArgs(-5), b: keyArgs(int8(-5)), untyped: true},
		{name: "negative int vs float", a: keyArgs(-5), b: keyArgs(-5.0), untyped: true},
		{name: "same int same type", a: keyArgs(42), b: keyArgs(42), untyped: true, typed: true},
		{name: "different ints", a: keyArgs(1), b: keyArgs(2)},
		{name: "2^53+1 vs float64(2^53)", a: keyArgs(int64(1<<53 + 1)), b: keyArgs(float64(1 << 53))},
		{name: "2^53 vs float64(2^53)", a: keyArgs(int64(1 << 53)), b: keyArgs(float64(1 << 53)), untyped: true},
		{name: "min int64 vs -2^63", a: keyArgs(int64(math.MinInt64)), b: keyArgs(-0x1p63), untyped: true},
		{name: "2^63 uint vs float", a: keyArgs(uint64(1 << 63)), b: keyArgs(0x1p63), untyped: true},
		{name: "max int64 vs uint64", a: keyArgs(int64(math.MaxInt64)), b: keyArgs(uint64(math.MaxInt64)), untyped: true},
		{name: "-1 vs max uint64", a: keyArgs(-1), b: keyArgs(uint64(math.MaxUint64))},
		{name: "max uint64 vs 2^64", a: keyArgs(uint64(math.MaxUint64)), b: keyArgs(0x1p64)},
		{name: "-0.0 vs 0", a: keyArgs(math.Copysign(0, -1)), b: keyArgs(0), untyped: true},
		{name: "-0.0 vs 0.0", a: keyArgs(math.Copysign(0, -1)), b: keyArgs(0.0), untyped: true, typed: true},
		{name: "1.5 float32 vs float64", a: keyArgs(float32(1.5)), b: keyArgs(1.5), untyped: true},
		{name: "float32(0.1) vs 0.1", a: keyArgs(float32(0.1)), b: keyArgs(0.1)},
		{name: "float32(0.1) vs its float64", a: keyArgs(float32(0.1)), b: keyArgs(float64(float32(0.1))), untyped: true},
		{name: "2^52-0.5 vs 2^52-1", a: keyArgs(0x1p52 - 0.5), b: keyArgs(int64(1<<52 - 1))},
		{name: "0.5 vs 0.25", a: keyArgs(0.5), b: keyArgs(0.25)},
		{name: "inf float32 vs float64", a: keyArgs(float32(math.Inf(1))), b: keyArgs(math.Inf(1)), untyped: true},
		{name: "+inf vs -inf", a: keyArgs(math.Inf(1)), b: keyArgs(math.Inf(-1))},
		{name: "NaN vs NaN", a: keyArgs(math.NaN()), b: keyArgs(math.NaN()), untyped: true, typed: true},
		{name: "NaN payloads", a: keyArgs(math.NaN()), b: keyArgs(nan2), untyped: true, typed: true},
		{name: "NaN sign", a: keyArgs(math.NaN()), b: keyArgs(negNaN), untyped: true, typed: true},
		{name: "NaN float32 vs float64", a: keyArgs(float32(math.NaN())), b: keyArgs(math.NaN()), untyped: true},
		{name: "NaN vs inf", a: keyArgs(math.NaN()), b: keyArgs(math.Inf(1))},
		{name: "complex64 vs complex128", a: keyArgs(complex64(complex(1, 2))), b: keyArgs(complex(1, 2)), untyped: true},
		{name: "complex parts swapped", a: keyArgs(complex(1, 2)), b: keyArgs(complex(2, 1))},
		{name: "complex -0 real part", a: keyArgs(complex(math.Copysign(0, -1), 1)), b: keyArgs(complex(0, 1)), untyped: true, typed: true},
		{name: "complex vs its real part", a: keyArgs(complex(1, 2)), b: keyArgs(1.0)},
		{name: "complex with -0 imaginary vs real", a: keyArgs(complex(3, math.Copysign(0, -1))), b: keyArgs(3), untyped: true},
		{name: "complex NaN parts", a: keyArgs(complex(math.NaN(), 1)), b: keyArgs(complex(nan2, 1)), untyped: true, typed: true},
		{name: "named float vs float64", a: keyArgs(keyCelsius(21.5)), b: keyArgs(21.5), untyped: true},
		{name: "named float same type", a: keyArgs(keyCelsius(21.5)), b: keyArgs(keyCelsius(21.5)), untyped: true, typed: true},
		{name: "named float vs int", a: keyArgs(keyCelsius(3)), b: keyArgs(3), untyped: true},

		// Bools and strings never equal numbers.
		{name: "true vs 1", a: keyArgs(true), b: keyArgs(1)},
		{name: "false vs 0", a: keyArgs(false), b: keyArgs(0)},
		{name: "true vs false", a: keyArgs(true), b: keyArgs(false)},
		{name: "string 1 vs 1", a: keyArgs("1"), b: keyArgs(1)},
		{name: "empty string vs nil", a: keyArgs(""), b: keyArgs(nil)},
		{name: "empty string vs 0", a: keyArgs(""), b: keyArgs(0)},
		{name: "named string vs string", a: keyArgs(keyID("x")), b: keyArgs("x"), untyped: true},

		// Lengths and argument counts.
		{name: "split strings", a: keyArgs("ab", "c"), b: keyArgs("a", "bc")},
		{name: "split string slices", a: keyArgs([]string{"ab", "c"}), b: keyArgs([]string{"a", "bc"})},
		{name: "one string vs two", a: keyArgs("abc"), b: keyArgs("ab", "c")},
		{name: "no arguments vs nil", a: keyArgs(), b: keyArgs(nil)},
		{name: "one vs one and nil", a: keyArgs(1), b: keyArgs(1, nil)},
		{name: "args vs slice of them", a: keyArgs(1, 2), b: keyArgs([]any{1, 2})},
		{name: "order matters", a: keyArgs(1, 2), b: keyArgs(2, 1)},
		{name: "no arguments", a: keyArgs(), b: keyArgs(), untyped: true, typed: true},

		// Slices, arrays, bytes.
		{name: "slice vs array", a: keyArgs([]int{1, 2}), b: keyArgs([2]int{1, 2})},
		{name: "nil slice vs empty slice", a: keyArgs(nilInts), b: keyArgs([]int{})},
		{name: "nil slice vs nil", a: keyArgs(nilInts), b: keyArgs(nil)},
		{name: "empty slice vs empty array", a: keyArgs([]int{}), b: keyArgs([0]int{})},
		{name: "slices of different number types", a: keyArgs([]int{1}), b: keyArgs([]int64{1}), untyped: true},
		{name: "empty slices of different types", a: keyArgs([]int{}), b: keyArgs([]string{}), untyped: true},
		{name: "nil slices of different types", a: keyArgs(nilInts), b: keyArgs([]string(nil)), untyped: true},
		{name: "slices equal", a: keyArgs([]int{1, 2, 3}), b: keyArgs([]int{1, 2, 3}), untyped: true, typed: true},
		{name: "slices differ", a: keyArgs([]int{1, 2, 3}), b: keyArgs([]int{1, 2, 4})},
		{name: "slice prefix", a: keyArgs([]int{1, 2}, 3), b: keyArgs([]int{1, 2, 3})},
		{name: "arrays of number types", a: keyArgs([2]int{1, 2}), b: keyArgs([2]float32{1, 2}), untyped: true},
		{name: "any elements by value", a: keyArgs([]any{1, "a"}), b: keyArgs([]any{int64(1), "a"}), untyped: true},
		{name: "any vs typed elements", a: keyArgs([]any{1, 2}), b: keyArgs([]int{1, 2}), untyped: true},
		{name: "bytes vs string", a: keyArgs([]byte("ab")), b: keyArgs("ab")},
		{name: "bytes vs ints", a: keyArgs([]byte{1, 2}), b: keyArgs([]int{1, 2})},
		{name: "bytes vs uint8 array", a: keyArgs([]byte{1, 2}), b: keyArgs([2]byte{1, 2})},
		{name: "nil bytes vs empty bytes", a: keyArgs([]byte(nil)), b: keyArgs([]byte{})},
		{name: "nil bytes vs nil ints", a: keyArgs([]byte(nil)), b: keyArgs(nilInts)},
		{name: "empty bytes vs empty string", a: keyArgs([]byte{}), b: keyArgs("")},
		{name: "named bytes vs bytes", a: keyArgs(keyRaw("ab")), b: keyArgs([]byte("ab")), untyped: true},
		{name: "bytes equal", a: keyArgs([]byte("ab")), b: keyArgs([]byte("ab")), untyped: true, typed: true},
		{name: "byte arrays vs int arrays", a: keyArgs([2]byte{1, 2}), b: keyArgs([2]int{1, 2}), untyped: true},

		// Maps.
		{name: "nil map vs empty map", a: keyArgs(nilMap), b: keyArgs(map[string]int{})},
		{name: "map insertion order", a: keyArgs(map[string]int{"a": 1, "b": 2, "c": 3}), b: keyArgs(func() map[string]int {
			m := map[string]int{}
			m["c"] = 3
			m["b"] = 2
			m["a"] = 1
			return m
		}()), untyped: true, typed: true},
		{name: "maps differ in a value", a: keyArgs(map[string]int{"a": 1}), b: keyArgs(map[string]int{"a": 2})},
		{name: "maps differ in a key", a: keyArgs(map[string]int{"a": 1}), b: keyArgs(map[string]int{"b": 1})},
		{name: "map vs slice of pairs", a: keyArgs(map[string]int{"a": 1}), b: keyArgs([]any{"a", 1})},
		{name: "maps of number types", a: keyArgs(map[string]int{"a": 1}), b: keyArgs(map[string]float64{"a": 1}), untyped: true},
		{name: "map keys equal in value", a: keyArgs(map[any]string{1: "a", int64(1): "b"}), b: keyArgs(map[any]string{1: "b", int64(1): "a"}), untyped: true},
		{name: "nil maps of different types", a: keyArgs(nilMap), b: keyArgs(map[int]bool(nil)), untyped: true},
		{name: "map NaN keys", a: keyArgs(map[float64]int{math.NaN(): 1, math.NaN(): 2}), b: keyArgs(map[float64]int{math.NaN(): 2, math.NaN(): 1}), untyped: true, typed: true},

		// Structs.
		{name: "struct types with equal fields", a: keyArgs(keyPointA{1, 2}), b: keyArgs(keyPointB{1, 2})},
		{name: "struct equal", a: keyArgs(keyPointA{1, 2}), b: keyArgs(keyPointA{1, 2}), untyped: true, typed: true},
		{name: "struct differs", a: keyArgs(keyPointA{1, 2}), b: keyArgs(keyPointA{2, 1})},
		{name: "struct vs its fields", a: keyArgs(keyPointA{1, 2}), b: keyArgs(1, 2)},
		{name: "struct vs array of fields", a: keyArgs(keyPointA{1, 2}), b: keyArgs([2]int{1, 2})},
		{name: "unexported fields equal", a: keyArgs(keyHidden{n: 1, s: "s", f: 0.5, b: []byte("b"), m: map[string][]int{"k": {1}}, p: keyIntPtr(3), i: "i", a: [2]uint8{4, 5}}),
			b: keyArgs(keyHidden{n: 1, s: "s", f: 0.5, b: []byte("b"), m: map[string][]int{"k": {1}}, p: keyIntPtr(3), i: "i", a: [2]uint8{4, 5}}), untyped: true, typed: true},
		{name: "unexported int differs", a: keyArgs(keyHidden{n: 1}), b: keyArgs(keyHidden{n: 2})},
		{name: "unexported map differs", a: keyArgs(keyHidden{m: map[string][]int{"k": {1}}}), b: keyArgs(keyHidden{m: map[string][]int{"k": {2}}})},
		{name: "unexported nil vs empty map", a: keyArgs(keyHidden{m: map[string][]int{}}), b: keyArgs(keyHidden{})},
		{name: "unexported pointee differs", a: keyArgs(keyHidden{p: keyIntPtr(1)}), b: keyArgs(keyHidden{p: keyIntPtr(2)})},
		{name: "unexported interface differs", a: keyArgs(keyHidden{i: 1}), b: keyArgs(keyHidden{i: "1"})},
		{name: "unexported interface by value", a: keyArgs(keyHidden{i: 1}), b: keyArgs(keyHidden{i: 1.0}), untyped: true},
		{name: "unexported bytes differ", a: keyArgs(keyHidden{b: []byte{}}), b: keyArgs(keyHidden{})},
		{name: "blank fields skipped", a: keyArgs(keyWithBlank{A: 1, B: 2}), b: keyArgs(func() keyWithBlank {
			// == ignores blank fields; so does the key, even when one holds
			// something (written here through unsafe).
			w := keyWithBlank{A: 1, B: 2}
			*(*int)(unsafe.Add(unsafe.Pointer(&w), unsafe.Offsetof(w.A)+unsafe.Sizeof(w.A))) = 99
			return w
		}()), untyped: true, typed: true},
		{name: "interface field by value", a: keyArgs(keyWithAny{1}), b: keyArgs(keyWithAny{int64(1)}), untyped: true},
		{name: "interface field nil vs nil pointer", a: keyArgs(keyWithAny{}), b: keyArgs(keyWithAny{(*int)(nil)})},
		{name: "anonymous structs", a: keyArgs(struct{ A int }{1}), b: keyArgs(struct{ A int }{1}), untyped: true, typed: true},
		{name: "anonymous struct vs named", a: keyArgs(struct{ X, Y int }{1, 2}), b: keyArgs(keyPointA{1, 2})},

		// Pointers and interfaces.
		{name: "pointers to equal values", a: keyArgs(&x), b: keyArgs(&y), untyped: true, typed: true},
		{name: "pointers to different values", a: keyArgs(keyIntPtr(1)), b: keyArgs(keyIntPtr(2))},
		{name: "nil pointer vs pointer to zero", a: keyArgs((*int)(nil)), b: keyArgs(keyIntPtr(0))},
		{name: "pointer vs value", a: keyArgs(keyIntPtr(1)), b: keyArgs(1)},
		{name: "pointer to pointer vs pointer", a: keyArgs(func() **int { p := keyIntPtr(1); return &p }()), b: keyArgs(keyIntPtr(1))},
		{name: "nil pointer vs nil", a: keyArgs((*int)(nil)), b: keyArgs(nil)},
		{name: "nil pointers of different types", a: keyArgs((*int)(nil)), b: keyArgs((*string)(nil)), untyped: true},
		{name: "pointers to number types", a: keyArgs(keyIntPtr(1)), b: keyArgs(func() *float64 { f := 1.0; return &f }()), untyped: true},
		{name: "nil interface vs nil pointer in slice", a: keyArgs([]any{nil}), b: keyArgs([]any{(*int)(nil)})},
		{name: "error interface value", a: keyArgs([]error{nil}), b: keyArgs([]error{nil}), untyped: true, typed: true},
		{name: "shared pointer vs copies", a: keyArgs(func() []*int { p := keyIntPtr(5); return []*int{p, p} }()), b: keyArgs([]*int{keyIntPtr(5), keyIntPtr(5)}), untyped: true, typed: true},

		// BinaryMarshaler.
		{name: "time monotonic reading ignored", a: keyArgs(instant), b: keyArgs(instant.Round(0)), untyped: true, typed: true},
		{name: "time now vs stripped", a: keyArgs(now), b: keyArgs(now.Round(0)), untyped: true, typed: true},
		{name: "UTC vs zero offset", a: keyArgs(instant), b: keyArgs(instant.In(time.FixedZone("", 0)))},
		{name: "same offset other zone name", a: keyArgs(instant.In(paris)), b: keyArgs(instant.In(time.FixedZone("other", 3600))), untyped: true, typed: true},
		{name: "times differ", a: keyArgs(instant), b: keyArgs(instant.Add(time.Nanosecond))},
		{name: "same instant other offset", a: keyArgs(instant), b: keyArgs(instant.In(paris))},
		{name: "time in exported field", a: keyArgs(keyWhen{instant}), b: keyArgs(keyWhen{instant.Round(0)}), untyped: true, typed: true},
		{name: "time vs its unix seconds", a: keyArgs(instant), b: keyArgs(instant.Unix())},
		{name: "own MarshalBinary decides", a: keyArgs(keyVersioned{n: 1, cache: keyIntPtr(1)}), b: keyArgs(keyVersioned{n: 1}), untyped: true, typed: true},
		{name: "own MarshalBinary differs", a: keyArgs(keyVersioned{n: 1}), b: keyArgs(keyVersioned{n: 2})},
		{name: "own MarshalBinary vs its bytes", a: keyArgs(keyVersioned{n: 1}), b: keyArgs([]byte("1"))},
		{name: "promoted MarshalBinary keeps other fields", a: keyArgs(keyStamped{instant, "a"}), b: keyArgs(keyStamped{instant, "b"})},
		{name: "promoted MarshalBinary equal", a: keyArgs(keyStamped{instant, "a"}), b: keyArgs(keyStamped{instant.Round(0), "a"}), untyped: true, typed: true},

		// math/big, by value and apart from Go's numbers.
		{name: "big.Int equal", a: keyArgs(big.NewInt(1 << 40)), b: keyArgs(new(big.Int).Lsh(big.NewInt(1), 40)), untyped: true, typed: true},
		{name: "big.Int differs", a: keyArgs(big.NewInt(1)), b: keyArgs(big.NewInt(-1))},
		{name: "big.Int vs int", a: keyArgs(big.NewInt(1)), b: keyArgs(keyIntPtr(1))},
		{name: "big.Int vs big.Rat", a: keyArgs(big.NewInt(1)), b: keyArgs(big.NewRat(1, 1))},
		{name: "big.Int by value vs pointer", a: keyArgs(*big.NewInt(7)), b: keyArgs(big.NewInt(7))},
		{name: "big.Int by value", a: keyArgs(*big.NewInt(7)), b: keyArgs(*big.NewInt(7)), untyped: true, typed: true},
		{name: "big.Int in unexported field through pointer", a: keyArgs(&keyBigField{*big.NewInt(3)}), b: keyArgs(&keyBigField{*big.NewInt(3)}), untyped: true, typed: true},
		{name: "big.Int in unexported field differs", a: keyArgs(&keyBigField{*big.NewInt(3)}), b: keyArgs(&keyBigField{*big.NewInt(4)})},
		{name: "big.Rat normalized", a: keyArgs(big.NewRat(2, 4)), b: keyArgs(big.NewRat(1, 2)), untyped: true, typed: true},
		{name: "big.Rat zero value", a: keyArgs(new(big.Rat)), b: keyArgs(big.NewRat(0, 5)), untyped: true, typed: true},
		{name: "big.Rat differs", a: keyArgs(big.NewRat(1, 3)), b: keyArgs(big.NewRat(-1, 3))},
		{name: "big.Float precisions", a: keyArgs(new(big.Float).SetPrec(20).SetInt64(3)), b: keyArgs(new(big.Float).SetPrec(200).SetInt64(3)), untyped: true, typed: true},
		{name: "big.Float -0 vs 0", a: keyArgs(new(big.Float).Neg(new(big.Float))), b: keyArgs(new(big.Float)), untyped: true, typed: true},
		{name: "big.Float differs", a: keyArgs(big.NewFloat(0.5)), b: keyArgs(big.NewFloat(0.25))},
		{name: "big.Float infinities", a: keyArgs(big.NewFloat(math.Inf(1))), b: keyArgs(big.NewFloat(math.Inf(-1)))},
		{name: "big.Float vs float64", a: keyArgs(big.NewFloat(0.5)), b: keyArgs(0.5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ua, ub := keyMustOf(t, false, tt.a...), keyMustOf(t, false, tt.b...)
			ta, tb := keyMustOf(t, true, tt.a...), keyMustOf(t, true, tt.b...)
			if tt.untyped {
				assert.Equal(t, hex.EncodeToString([]byte(ua)), hex.EncodeToString([]byte(ub)), "KeyOf")
			} else {
				assert.NotEqual(t, ua, ub, "KeyOf")
			}
			if tt.typed {
				assert.Equal(t, hex.EncodeToString([]byte(ta)), hex.EncodeToString([]byte(tb)), "TypedKeyOf")
			} else {
				assert.NotEqual(t, ta, tb, "TypedKeyOf")
			}
			require.False(t, tt.typed && !tt.untyped, "a typed match must be an untyped match")
			// Typed and untyped keys never meet.
			assert.NotEqual(t, ua, ta)
			assert.NotEqual(t, ub, tb)
		})
	}
}

// TestKeyFastPathMatchesReflection checks that the reflection-free path for
// common types writes exactly what the reflective walk writes for the same
// value, as it would meet it inside a struct, slice or interface.
func TestKeyFastPathMatchesReflection(t *testing.T) {
	values := []any{
		true, false, 0, -1, math.MaxInt, int8(-8), int16(300), int32(-70000), int64(math.MinInt64),
		uint(7), uint8(255), uint16(65535), uint32(1 << 31), uint64(math.MaxUint64), uintptr(9),
		float32(1.25), float32(math.NaN()), 2.5, math.Inf(-1), 0x1p63, 1e300, math.Copysign(0, -1),
		complex64(complex(1, -1)), complex(0.5, 0), complex(math.NaN(), math.NaN()),
		"", "héllo", []byte(nil), []byte{}, []byte{0, 1, 2},
		[]int(nil), []int{}, []int{-1, 0, 1}, []string(nil), []string{}, []string{"a", ""},
	}
	for _, typed := range []bool{false, true} {
		for _, x := range values {
			t.Run(fmt.Sprintf("%v/%T/%v", typed, x, x), func(t *testing.T) {
				fast := &encoder{typed: typed}
				require.NoError(t, fast.any(x))

				slow := &encoder{typed: typed}
				v := reflect.ValueOf(x)
				slow.typeTag(typeInfoOf(v.Type()).name)
				require.NoError(t, slow.value(v))
				assert.Equal(t, hex.EncodeToString(slow.buf), hex.EncodeToString(fast.buf))

				// And through an interface, as an element of []any.
				inSlice := keyMustOf(t, typed, []any{x})
				direct := keyMustOf(t, typed, x)
				assert.True(t, strings.HasSuffix(inSlice, direct[3:]), "element %x vs argument %x", inSlice, direct)
			})
		}
	}
}

func TestKeyTypeNames(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[int](), "int"},
		{reflect.TypeFor[[]byte](), "[]uint8"},
		{reflect.TypeFor[[]any](), "[]interface {}"},
		{reflect.TypeFor[keyPointA](), "github.com/gomemo/memo.keyPointA"},
		{reflect.TypeFor[[]*keyPointA](), "[]*github.com/gomemo/memo.keyPointA"},
		{reflect.TypeFor[map[string][3]keyCelsius](), "map[string][3]github.com/gomemo/memo.keyCelsius"},
		{reflect.TypeFor[time.Time](), "time.Time"},
		{reflect.TypeFor[error](), "error"},
		{reflect.TypeFor[keyGen[*r1.Rand]](), "github.com/gomemo/memo.keyGen[*math/rand.Rand]"},
		{reflect.TypeFor[struct{ A int }](), "struct { A int }"},
		{reflect.TypeFor[struct{}](), "struct {}"},
		{reflect.TypeFor[struct{ F *r1.Rand }](), "struct { F *math/rand.Rand }"},
		{reflect.TypeFor[struct{ F *r2.Rand }](), "struct { F *math/rand/v2.Rand }"},
		{reflect.TypeFor[struct {
			n int `tag:"n"`
			time.Time
			error
		}](), `struct { github.com/gomemo/memo.n int "tag:\"n\""; embedded Time time.Time; embedded github.com/gomemo/memo.error error }`},
		{reflect.TypeFor[func(int, ...*r2.Rand) (bool, error)](), "func(int, ...*math/rand/v2.Rand) (bool, error)"},
		{reflect.TypeFor[func() func() *r1.Rand](), "func() func() *math/rand.Rand"},
		{reflect.TypeFor[func([]int)](), "func([]int)"},
		{reflect.TypeFor[chan<- *r1.Rand](), "chan<- *math/rand.Rand"},
		{reflect.TypeFor[chan (<-chan int)](), "chan (<-chan int)"},
		{reflect.TypeFor[chan<- chan int](), "chan<- chan int"},
		{reflect.TypeFor[interface {
			M(*r1.Rand) int
			m()
		}](), "interface { M(*math/rand.Rand) int; github.com/gomemo/memo.m() }"},
	} {
		assert.Equal(t, tt.want, typeName(tt.typ))
	}
}

// TestKeyUnnamedTypesByPath shows that unnamed types are named with package
// paths: reflect's String names both of these "struct { F *rand.Rand }".
func TestKeyUnnamedTypesByPath(t *testing.T) {
	for _, typed := range []bool{false, true} {
		assert.NotEqual(t, hex.EncodeToString([]byte(keyMustOf(t, typed, struct{ F *r1.Rand }{}))),
			hex.EncodeToString([]byte(keyMustOf(t, typed, struct{ F *r2.Rand }{}))), "typed=%v", typed)
	}
	// Typed keys name the types of values in interfaces, nil ones included.
	for _, pair := range [][2]any{
		{([]func(*r1.Rand))(nil), ([]func(*r2.Rand))(nil)},
		{[]chan *r1.Rand(nil), []chan *r2.Rand(nil)},
		{[]interface{ M(*r1.Rand) }(nil), []interface{ M(*r2.Rand) }(nil)},
		{(*struct{ F *r1.Rand })(nil), (*struct{ F *r2.Rand })(nil)},
	} {
		assert.NotEqual(t, keyMustOf(t, true, pair[0]), keyMustOf(t, true, pair[1]), "%T", pair[0])
		assert.Equal(t, keyMustOf(t, false, pair[0]), keyMustOf(t, false, pair[1]), "%T", pair[0])
	}
}

// keyBlankT and keyFullT make values of two struct types named keyT, one with
// a blank field.
func keyBlankT(a, b int) any {
	type keyT struct {
		A int
		_ int
		B int
	}
	return keyT{A: a, B: b}
}

func keyFullT(a, b, c int) any {
	type keyT struct{ A, B, C int }
	return keyT{a, b, c}
}

// TestKeyBlankFieldsPrefixFree shows that a struct's field count is that of
// the fields written: were blank fields counted, the encoding of keyBlankT
// followed by an int would be that of keyFullT.
func TestKeyBlankFieldsPrefixFree(t *testing.T) {
	for _, typed := range []bool{false, true} {
		a := keyMustOf(t, typed, keyBlankT(1, 2), 3, keyFullT(4, 5, 6))
		b := keyMustOf(t, typed, keyFullT(1, 2, 3), keyBlankT(4, 5), 6)
		assert.NotEqual(t, hex.EncodeToString([]byte(a)), hex.EncodeToString([]byte(b)), "typed=%v", typed)
	}
}

// TestKeyNilsAcrossTypes pins which nils of different types share a key.
func TestKeyNilsAcrossTypes(t *testing.T) {
	assert.Equal(t, keyMustOf(t, false, []int(nil)), keyMustOf(t, false, []string(nil)), "nil slices")
	assert.NotEqual(t, keyMustOf(t, false, []byte(nil)), keyMustOf(t, false, []int(nil)), "nil []byte vs nil []int")
	assert.Equal(t, keyMustOf(t, false, map[string]int(nil)), keyMustOf(t, false, map[int][]bool(nil)), "nil maps")
	assert.Equal(t, keyMustOf(t, false, (*int)(nil)), keyMustOf(t, false, (*keyPointA)(nil)), "nil pointers")
}

// keyDeepChild, set in the environment, makes TestKeyDeepListNoCrash do the
// deep KeyOf it runs in a child process.
const keyDeepChild = "MEMO_KEY_DEEP_CHILD"

// TestKeyDeepListNoCrash runs KeyOf on a list far deeper than maxKeyDepth in a
// child process, since overflowing the stack would end the test binary.
func TestKeyDeepListNoCrash(t *testing.T) {
	if os.Getenv(keyDeepChild) == "1" {
		var head *keyNode
		for i := range 1_000_000 {
			head = &keyNode{Next: head, V: i}
		}
		_, err := KeyOf(head)
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKeyDeepListNoCrash$")
	cmd.Env = append(os.Environ(), keyDeepChild+"=1")
	out, err := cmd.CombinedOutput()
	lines := strings.SplitN(string(out), "\n", 11)
	head := strings.Join(lines[:min(len(lines), 10)], "\n")
	require.NoError(t, ctx.Err(), "the child did not finish")
	require.NoError(t, err, "the child failed; its output begins:\n%s", head)
	assert.Contains(t, string(out), "memo: argument 0 (*memo.keyNode): the value is nested more than 10000 levels deep, so it cannot be part of a key\n")
}

// TestKeyDepthLimit checks that maxKeyDepth levels encode and one more does
// not, nested through pointers or through interfaces only.
func TestKeyDepthLimit(t *testing.T) {
	list := func(n int) *keyNode {
		var head *keyNode
		for range n {
			head = &keyNode{Next: head}
		}
		return head
	}
	nest := func(n int) keyNest {
		var v keyNest
		for range n {
			v = keyNest{Next: v}
		}
		return v
	}
	for _, typed := range []bool{false, true} {
		for _, tt := range []struct {
			name      string
			deep, too any
			argType   string
		}{
			{"pointers", list(maxKeyDepth), list(maxKeyDepth + 1), "*memo.keyNode"},
			{"interfaces", nest(maxKeyDepth), nest(maxKeyDepth + 1), "memo.keyNest"},
		} {
			t.Run(fmt.Sprintf("%s/typed=%v", tt.name, typed), func(t *testing.T) {
				keyMustOf(t, typed, tt.deep)
				var err error
				if typed {
					_, err = TypedKeyOf(tt.too)
				} else {
					_, err = KeyOf(tt.too)
				}
				require.ErrorIs(t, err, ErrUnsupportedArgument)
				assert.EqualError(t, err, "memo: argument 0 ("+tt.argType+"): the value is nested more than 10000 levels deep, so it cannot be part of a key")
			})
		}
	}
}

// TestKeyLengthLimit checks that data sharing sub-values, which are encoded
// once per path to them, is refused once its key passes maxKeyLen.
func TestKeyLengthLimit(t *testing.T) {
	dag := &keyDAG{}
	for range 40 {
		dag = &keyDAG{L: dag, R: dag}
	}
	var err error
	within(t, 30*time.Second, func() { _, err = KeyOf(dag) })
	require.ErrorIs(t, err, ErrUnsupportedArgument)
	assert.EqualError(t, err, "memo: argument 0 (*memo.keyDAG): the key would be longer than 64 MiB (67108864 bytes), so it cannot be built")

	_, err = KeyOf(1, make([]byte, maxKeyLen))
	assert.EqualError(t, err, "memo: argument 1 ([]uint8): the key would be longer than 64 MiB (67108864 bytes), so it cannot be built")

	mib := make([]byte, 1<<20)
	assert.Equal(t, 1<<20+7, len(keyMustOf(t, false, mib)))
	assert.Equal(t, 1<<20+34, len(keyMustOf(t, true, []any{mib})))
}

// TestKeyNestedMapsBounded: maps nested deep around a large value, which
// sorting moves once per level, are refused before that work grows
// quadratically, and maps nested shallow still work.
func TestKeyNestedMapsBounded(t *testing.T) {
	large := strings.Repeat("x", 10<<10)
	nest := func(depth int) any {
		var v any = 0
		for range depth {
			v = map[string]any{"a": v, "b": large}
		}
		return v
	}
	var err error
	within(t, 10*time.Second, func() { _, err = KeyOf(nest(4000)) })
	require.ErrorIs(t, err, ErrUnsupportedArgument)
	assert.EqualError(t, err, "memo: argument 0 (map[string]interface {}): sorting its maps' entries would move more than 256 MiB: maps nested deep around large values")
	keyMustOf(t, false, nest(20))
}

// TestKeyOneEntryMapsNotCopied checks that a one-entry map is not copied to
// be sorted, which would make a chain of such maps quadratic.
func TestKeyOneEntryMapsNotCopied(t *testing.T) {
	var v any = 0
	for range 1000 {
		v = map[string]any{"k": v}
	}
	e := &encoder{}
	require.NoError(t, e.value(reflect.ValueOf(v)))
	assert.Zero(t, cap(e.scratch))
}

func TestKeyDeterministic(t *testing.T) {
	build := func(reverse bool) map[string][]int {
		m := make(map[string][]int)
		for i := range 500 {
			j := i
			if reverse {
				j = 499 - i
			}
			m[strconv.Itoa(j)] = []int{j, -j}
		}
		return m
	}
	m := build(false)
	nested := map[any]any{"m": m, 1: []any{m, 2.5}, 2.5: keyPointA{1, 2}}
	for _, typed := range []bool{false, true} {
		first := keyMustOf(t, typed, m, nested)
		for range 100 {
			require.Equal(t, first, keyMustOf(t, typed, m, nested))
		}
		assert.Equal(t, first, keyMustOf(t, typed, build(true), nested), "insertion order does not matter")
	}
}

// TestKeyGolden pins the bytes of some keys. A failure here means the
// encoding changed: keys stored by earlier builds would no longer be found,
// so such a change needs a new KeyVersion (and these values updated).
func TestKeyGolden(t *testing.T) {
	// str is a string's length (below 128) and bytes; num a math/big number.
	str := func(s string) string { return fmt.Sprintf("%02x", len(s)) + hex.EncodeToString([]byte(s)) }
	num := func(typ, text string) string { return "78" + str("math/big."+typ) + str(text) }
	over64, _ := new(big.Int).SetString("400000000000000001", 16)
	third := new(big.Float).SetPrec(200).Quo(big.NewFloat(1), big.NewFloat(3))
	for _, tt := range []struct {
		name  string
		typed bool
		args  []any
		want  string
	}{
		{"empty", false, keyArgs(), "025500"},
		{"int and string", false, keyArgs(1, "ab"), "02550269027302" + "6162"},
		{"numbers", false, keyArgs(-1, 1.5, math.NaN(), complex(0, 1), uint64(math.MaxUint64), true, nil), "025507" +
			"6901" + "643ff8000000000000" + "647ff8000000000001" + "63" + "0000000000000000" + "3ff0000000000000" +
			"75ffffffffffffffffff01" + "6201" + "7a"},
		{"slice and map", false, keyArgs([]int{1, 2}, map[string]int{"b": 2, "a": 1}, []byte("hi"), [1]bool{}), "025504" +
			"6c0269026904" + "6d02" + "730161" + "6902" + "730162" + "6904" + "7902" + "6869" + "6101" + "6200"},
		{"nils", false, keyArgs([]int(nil), map[int]int(nil), []byte(nil), (*int)(nil), keyIntPtr(3)), "025505" + "4c" + "4d" + "59" + "50" + "706906"},
		{"struct", false, keyArgs(keyPointA{1, 2}), "025501" + "72" + "20" + hex.EncodeToString([]byte("github.com/gomemo/memo.keyPointA")) + "02" + "6902" + "6904"},
		{"time", false, keyArgs(time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)), "025501" + "78" + "09" + hex.EncodeToString([]byte("time.Time")) + "0f" + "01" + "0000000edd257425" + "00000006" + "ffff"},
		{"typed", true, keyArgs(1, "ab", []any{int8(1), nil}), "025403" +
			"7403696e74" + "6902" +
			"7406737472696e67" + "73026162" +
			"740e5b5d696e74657266616365207b7d" + "6c02" + "740469" + "6e7438" + "6902" + "7a"},
		{"blank field", false, keyArgs(keyWithBlank{A: 1, B: 2}), "025501" + "72" + str("github.com/gomemo/memo.keyWithBlank") + "02" + "6902" + "6904"},
		{"unnamed struct", false, keyArgs(struct{ F *r2.Rand }{}), "025501" + "72" + str("struct { F *math/rand/v2.Rand }") + "01" + "50"},
		{"int at 1<<31-1", false, keyArgs(keyPointA{1<<31 - 1, -1 << 31}), "025501" + "72" + str("github.com/gomemo/memo.keyPointA") + "02" + "69feffffff0f" + "69ffffffff0f"},
		{"big.Int", false, keyArgs(big.NewInt(1<<40), over64, big.NewInt(-31), *big.NewInt(255)), "025504" +
			"70" + num("Int", "10000000000") + "70" + num("Int", "400000000000000001") + "70" + num("Int", "-1f") + num("Int", "ff")},
		{"big.Rat", false, keyArgs(big.NewRat(-3, 4), new(big.Rat), big.NewRat(1, 1<<40)), "025503" +
			"70" + num("Rat", "-3/4") + "70" + num("Rat", "0/1") + "70" + num("Rat", "1/10000000000")},
		{"big.Float", false, keyArgs(new(big.Float).SetPrec(20).SetFloat64(1.5), third, new(big.Float).Neg(new(big.Float)), big.NewFloat(math.Inf(-1)), big.NewFloat(-0.1)), "025505" +
			"70" + num("Float", "0x.cp+1") + "70" + num("Float", "0x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabp-1") +
			"70" + num("Float", "0") + "70" + num("Float", "-Inf") + "70" + num("Float", "-0x.ccccccccccccdp-3")},
		{"typed big.Int", true, keyArgs(big.NewInt(1)), "025401" + "74" + str("*math/big.Int") + "70" + num("Int", "1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, hex.EncodeToString([]byte(keyMustOf(t, tt.typed, tt.args...))))
		})
	}
}

func TestKeyErrors(t *testing.T) {
	cyclic := &keyNode{V: 1}
	cyclic.Next = &keyNode{Next: cyclic}
	loop := []any{1, nil}
	loop[1] = loop
	selfMap := map[string]any{}
	selfMap["me"] = selfMap
	var iface any
	iface = &iface

	tests := []struct {
		name    string
		args    []any
		message string // the error's text, or a part of it
		exact   bool
		cause   error
	}{
		{name: "func", args: keyArgs(1, "x", func(n int) int { return n }), message: "memo: argument 2 (func(int) int): cannot be part of a key", exact: true},
		{name: "chan", args: keyArgs(make(chan int)), message: "memo: argument 0 (chan int): cannot be part of a key", exact: true},
		{name: "unsafe pointer", args: keyArgs(0, unsafe.Pointer(&loop)), message: "memo: argument 1 (unsafe.Pointer): cannot be part of a key", exact: true},
		{name: "nested func", args: keyArgs([]any{keyPointA{}, keyWithFunc{F: func(n int) int { return n }}}),
			message: "memo: argument 0 ([]interface {}): func(int) int at [1].F: cannot be part of a key", exact: true},
		{name: "nil func field", args: keyArgs([]keyWithFunc{{}}),
			message: "memo: argument 0 ([]memo.keyWithFunc): func(int) int at [0].F: cannot be part of a key", exact: true},
		{name: "func in map value", args: keyArgs("a", map[string]any{"f": func() {}}),
			message: "memo: argument 1 (map[string]interface {}): func() at [map value]: cannot be part of a key", exact: true},
		{name: "nil func", args: keyArgs((func())(nil)), message: "memo: argument 0 (func()): cannot be part of a key", exact: true},
		{name: "cyclic pointer", args: keyArgs(cyclic), message: "memo: argument 0 (*memo.keyNode): cyclic data (reachable from itself) cannot be part of a key", exact: true},
		{name: "cyclic slice through interface", args: keyArgs("x", loop), message: "memo: argument 1 ([]interface {}): ", exact: false},
		{name: "cyclic map", args: keyArgs(selfMap), message: "memo: argument 0 (map[string]interface {}): cyclic data (reachable from itself) cannot be part of a key", exact: true},
		{name: "cyclic interface pointer", args: keyArgs(iface), message: "memo: argument 0 (*interface {}): ", exact: false},
		{name: "time in unexported field", args: keyArgs(keyHiddenAt{time.Now()}),
			message: "memo: argument 0 (memo.keyHiddenAt): time.Time at .when: implements encoding.BinaryMarshaler but is in an unexported field, so it cannot be part of a key", exact: true},
		{name: "MarshalBinary fails", args: keyArgs(1, keyBadMarshal{}), message: "memo: argument 1 (memo.keyBadMarshal): MarshalBinary failed, so it cannot be part of a key: no bytes today", exact: true},
		{name: "MarshalBinary panics", args: keyArgs(keyPanicMarshal{}), message: "memo: argument 0 (memo.keyPanicMarshal): panic while building a key: runtime error: invalid memory address or nil pointer dereference", exact: true},
		{name: "time MarshalBinary rejects offset -1 minute", args: keyArgs(time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -60))),
			message: "memo: argument 0 (time.Time): MarshalBinary failed, so it cannot be part of a key: Time.MarshalBinary: unexpected zone offset", exact: true},
		{name: "time.Location", args: keyArgs(keyWithLoc{time.UTC}), message: "memo: argument 0 (memo.keyWithLoc): time.Location at .L: holds caches that differ between processes, so it cannot be part of a key", exact: true},
		{name: "sync/atomic style unsafe.Pointer field", args: keyArgs(struct{ p unsafe.Pointer }{}), message: "memo: argument 0 (struct { p unsafe.Pointer }): unsafe.Pointer at .p: cannot be part of a key", exact: true},
		{name: "big.Int by value in unexported field", args: keyArgs(keyBigField{*big.NewInt(1)}),
			message: "memo: argument 0 (memo.keyBigField): big.Int at .n: a math/big value held by value where it cannot be read (in an unexported field) must be held through a pointer to be part of a key", exact: true},
	}
	for _, tt := range tests {
		for _, typed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/typed=%v", tt.name, typed), func(t *testing.T) {
				var key string
				var err error
				require.NotPanics(t, func() {
					if typed {
						key, err = TypedKeyOf(tt.args...)
					} else {
						key, err = KeyOf(tt.args...)
					}
				})
				require.Error(t, err)
				assert.Empty(t, key)
				assert.ErrorIs(t, err, ErrUnsupportedArgument)
				if tt.exact {
					assert.EqualError(t, err, tt.message)
				} else {
					assert.Contains(t, err.Error(), tt.message)
				}
				if strings.Contains(tt.name, "cyclic") {
					assert.Contains(t, err.Error(), "cyclic data")
				}
			})
		}
	}
}

// keyWrap nests v in depth slices, past the depth where cycle checks begin.
func keyWrap(v any, depth int) any {
	for range depth {
		v = []any{v}
	}
	return v
}

// TestKeyCycleCheckNoFalsePositive shows that data seen twice on one path,
// but not reachable from itself, is not taken for a cycle deep in a value.
func TestKeyCycleCheckNoFalsePositive(t *testing.T) {
	t.Run("shared pointer in siblings", func(t *testing.T) {
		p := keyIntPtr(1)
		_, err := KeyOf(keyWrap([]*int{p, p, p}, 2*cycleCheckDepth))
		require.NoError(t, err)
	})
	t.Run("struct and its first field share an address", func(t *testing.T) {
		s := &keyShared{First: keyLeaf{N: 4}}
		s.Back = &s.First
		chain := &keyChain{End: s}
		for range 2 * cycleCheckDepth {
			chain = &keyChain{Next: chain}
		}
		k, err := KeyOf(chain)
		require.NoError(t, err)

		// The same data without the shared address gives the same key.
		s2 := &keyShared{First: keyLeaf{N: 4}, Back: &keyLeaf{N: 4}}
		chain2 := &keyChain{End: s2}
		for range 2 * cycleCheckDepth {
			chain2 = &keyChain{Next: chain2}
		}
		assert.Equal(t, k, keyMustOf(t, false, chain2))
	})
	t.Run("sub-slices of one array", func(t *testing.T) {
		inner := make([]any, 3)
		inner[2] = 7
		inner[1] = inner[2:]
		inner[0] = inner[1:]
		k, err := KeyOf(keyWrap(inner, 2*cycleCheckDepth))
		require.NoError(t, err)
		copied := []any{[]any{[]any{7}, 7}, []any{7}, 7}
		assert.Equal(t, k, keyMustOf(t, false, keyWrap(copied, 2*cycleCheckDepth)))
	})
	t.Run("long list", func(t *testing.T) {
		var head *keyNode
		for i := range 10000 {
			head = &keyNode{Next: head, V: i}
		}
		_, err := KeyOf(head)
		require.NoError(t, err)
	})
}

func TestKeyNoPanicOnOddValues(t *testing.T) {
	var mu sync.Mutex
	odd := []any{
		reflect.ValueOf(1), reflect.TypeOf(1), &mu, errors.New("e"), t, new(any), [0]func(){},
		struct{ f func() }{}, map[any]any{nil: nil}, time.UTC, []any{nil, []any{}},
	}
	for _, v := range odd {
		for _, typed := range []bool{false, true} {
			assert.NotPanics(t, func() {
				var err error
				if typed {
					_, err = TypedKeyOf(v)
				} else {
					_, err = KeyOf(v)
				}
				if err != nil {
					assert.ErrorIs(t, err, ErrUnsupportedArgument)
					assert.True(t, strings.HasPrefix(err.Error(), "memo: argument 0 ("), err.Error())
				}
			}, "%T", v)
		}
	}
}

func TestKeyOfAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled() {
		t.Skip("allocation counts differ under coverage or the race detector")
	}
	args := []any{12345, 67890, "memo", 2.5, true, []byte("xy")}
	assert.LessOrEqual(t, testing.AllocsPerRun(200, func() { _, _ = KeyOf(args...) }), 1.0)
	assert.LessOrEqual(t, testing.AllocsPerRun(200, func() { _, _ = TypedKeyOf(args...) }), 1.0)
}

func BenchmarkKeyOf(b *testing.B) {
	for _, bb := range []struct {
		name string
		args []any
	}{
		{"ints", []any{12345, 67890, -42}},
		{"strings", []any{"alpha", "beta-gamma", "delta epsilon"}},
		{"slice+map", []any{[]int{1, 2, 3, 4, 5}, map[string]int{"a": 1, "b": 2, "c": 3}}},
	} {
		for _, typed := range []bool{false, true} {
			name := bb.name
			if typed {
				name += "/typed"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if typed {
						_, err = TypedKeyOf(bb.args...)
					} else {
						_, err = KeyOf(bb.args...)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// The fuzz test builds two argument lists from one set of fuzzed primitives
// and checks that they share a key exactly when a reference canonical form,
// written apart from the encoder, says they are equal.

type (
	keyFuzzPair struct {
		S string
		N any
	}
	keyFuzzPair2 struct {
		S string
		N any
	}
)

// keyFuzzPool is every value an argument list may be built from.
func keyFuzzPool(s1, s2 string, n int64, x float64, flag bool, raw []byte) []any {
	nn := n
	k := int(uint64(n) % uint64(len(s1)+1))
	var xInt int64
	if x >= -0x1p63 && x < 0x1p63 {
		xInt = int64(x)
	}
	var nilOrEmpty []any
	var nilOrEmptyMap map[string]int
	var nilOrRaw []byte
	// time.Time.MarshalBinary rejects an offset of -1 minute (see
	// TestKeyErrors), so the pool avoids it.
	offset := int(n%1000) * 60
	if offset == -60 {
		offset = 60
	}
	if !flag {
		nilOrEmpty = []any{}
		nilOrEmptyMap = map[string]int{}
		nilOrRaw = raw
	}
	bigX := (*big.Float)(nil) // big.NewFloat panics on NaN
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		bigX = big.NewFloat(x)
	}
	// Entries are only ever added at the end: the seed corpus picks entries
	// by index.
	return []any{
		s1, s2, n, x, flag, raw,
		int32(n), uint64(n), float32(x), float64(n), complex(x, 0), complex(x, float64(n)),
		[]any{s1, n}, []any{s2, x}, [2]any{s1, n},
		map[string]any{s1: n, s2: x}, map[any]any{n: s1, x: s2},
		[]byte(s1), []int64{n, int64(len(s1))}, &nn, (*int64)(nil), nil,
		nilOrEmpty, nilOrEmptyMap, keyCelsius(x), keyID(s1),
		keyFuzzPair{s1, n}, keyFuzzPair2{s1, n}, string(raw), uint8(n),
		nilOrRaw, !flag, [2]int64{n, 0}, []any{[]byte(s2), nil},
		time.Unix(n%1e11, int64(len(s2))).UTC(), time.Unix(n%1e11, 0).In(time.FixedZone("", offset)),
		[]float64{x, float64(n)}, map[float64]bool{x: flag},
		// Splits of s1 (and s2) whose concatenations meet.
		s1[:k], s1[k:] + s2, s1 + s2, []string{s1[:k], s1[k:]}, []string{s1}, [1]string{s1},
		// Numbers near x and n: a fraction next to an integer, an integer
		// next to x, integers above math.MaxInt64.
		float64(n) + 0.5, xInt, uint64(n) | 1<<63, float64(uint64(n) | 1<<63),
		[]any{raw, s1}, map[string][]byte{s1: raw}, keyFuzzPair{s2, x}, &[]any{s1},
		// A blank field, unnamed types that reflect prints alike, math/big.
		keyWithBlank{A: int(n), B: len(s1)}, struct{ F *r1.Rand }{}, struct{ F *r2.Rand }{},
		big.NewInt(n), bigX,
	}
}

// keyFuzzPick chooses up to 4 arguments from pool: sel's low byte gives the
// count, each following byte an index.
func keyFuzzPick(pool []any, sel uint64) []any {
	count := int(sel&0xff) % 5
	args := make([]any, count)
	for i := range args {
		args[i] = pool[int(sel>>(8*(i+1))&0xff)%len(pool)]
	}
	return args
}

// keyCanonTypes numbers the types keyCanon meets, so that it tells types
// apart by identity rather than by a name.
var keyCanonTypes struct {
	sync.Mutex
	ids map[reflect.Type]int
}

// keyCanonType is t's number, written as "#n".
func keyCanonType(t reflect.Type) string {
	keyCanonTypes.Lock()
	defer keyCanonTypes.Unlock()
	id, ok := keyCanonTypes.ids[t]
	if !ok {
		if keyCanonTypes.ids == nil {
			keyCanonTypes.ids = make(map[reflect.Type]int)
		}
		id = len(keyCanonTypes.ids)
		keyCanonTypes.ids[t] = id
	}
	return "#" + strconv.Itoa(id)
}

// keyCanon writes the reference canonical form of an argument list: two
// lists should share a key exactly when their forms are equal.
func keyCanon(args []any, typed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d args:", len(args))
	for _, a := range args {
		keyCanonIface(&b, reflect.ValueOf(a), typed)
		b.WriteString(";")
	}
	return b.String()
}

// keyCanonIface writes a value held in an interface (v invalid for nil).
func keyCanonIface(b *strings.Builder, v reflect.Value, typed bool) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if typed {
		b.WriteString("<" + keyCanonType(v.Type()) + ">")
	}
	keyCanonValue(b, v, typed)
}

// keyCanonNumber writes a real number exactly, as a fraction.
func keyCanonNumber(b *strings.Builder, r *big.Rat) {
	b.WriteString("num(" + r.RatString() + ")")
}

func keyCanonFloat(b *strings.Builder, f float64) {
	switch {
	case math.IsNaN(f):
		b.WriteString("num(NaN)")
	case math.IsInf(f, 1):
		b.WriteString("num(+Inf)")
	case math.IsInf(f, -1):
		b.WriteString("num(-Inf)")
	default:
		keyCanonNumber(b, new(big.Rat).SetFloat64(f))
	}
}

func keyCanonValue(b *strings.Builder, v reflect.Value, typed bool) {
	switch x := v.Interface().(type) {
	case time.Time:
		// MarshalBinary keeps the instant and the UTC offset, and tells
		// UTC apart from other zones at offset 0.
		_, offset := x.Zone()
		fmt.Fprintf(b, "time(%d,%d,%d,%v)", x.Unix(), x.Nanosecond(), offset, x.Location() == time.UTC)
		return
	case big.Int:
		// math/big numbers by their exact value, apart from other numbers
		// and from each other by type.
		b.WriteString("big" + keyCanonType(v.Type()) + "(" + x.String() + ")")
		return
	case big.Float:
		text := x.Text('g', 10) // ±Inf
		if !x.IsInf() {
			r, _ := x.Rat(nil)
			text = r.RatString()
		}
		b.WriteString("big" + keyCanonType(v.Type()) + "(" + text + ")")
		return
	case big.Rat:
		b.WriteString("big" + keyCanonType(v.Type()) + "(" + x.RatString() + ")")
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		fmt.Fprintf(b, "bool(%v)", v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		keyCanonNumber(b, new(big.Rat).SetInt64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		keyCanonNumber(b, new(big.Rat).SetInt(new(big.Int).SetUint64(v.Uint())))
	case reflect.Float32, reflect.Float64:
		keyCanonFloat(b, v.Float())
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		if imag(c) == 0 {
			keyCanonFloat(b, real(c))
			return
		}
		b.WriteString("complex(")
		keyCanonFloat(b, real(c))
		b.WriteString(",")
		keyCanonFloat(b, imag(c))
		b.WriteString(")")
	case reflect.String:
		b.WriteString("str(" + strconv.Quote(v.String()) + ")")
	case reflect.Slice:
		switch {
		case v.Type().Elem().Kind() == reflect.Uint8 && v.IsNil():
			b.WriteString("bytes(nil)")
		case v.Type().Elem().Kind() == reflect.Uint8:
			b.WriteString("bytes(" + strconv.Quote(string(v.Bytes())) + ")")
		case v.IsNil():
			b.WriteString("list(nil)")
		default:
			b.WriteString("list[")
			for i := range v.Len() {
				keyCanonValue(b, v.Index(i), typed)
				b.WriteString(",")
			}
			b.WriteString("]")
		}
	case reflect.Array:
		b.WriteString("tuple[")
		for i := range v.Len() {
			keyCanonValue(b, v.Index(i), typed)
			b.WriteString(",")
		}
		b.WriteString("]")
	case reflect.Map:
		if v.IsNil() {
			b.WriteString("map(nil)")
			return
		}
		var entries []string
		for k, e := range v.Seq2() {
			var eb strings.Builder
			keyCanonValue(&eb, k, typed)
			eb.WriteString("=>")
			keyCanonValue(&eb, e, typed)
			entries = append(entries, eb.String())
		}
		slices.Sort(entries)
		b.WriteString("map{" + strings.Join(entries, ",") + "}")
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("ptr(nil)")
			return
		}
		b.WriteString("ptr(")
		keyCanonValue(b, v.Elem(), typed)
		b.WriteString(")")
	case reflect.Interface:
		if v.IsNil() {
			keyCanonIface(b, reflect.Value{}, typed)
			return
		}
		keyCanonIface(b, v.Elem(), typed)
	case reflect.Struct:
		// Two struct types differ however alike they print; blank fields
		// are left out.
		b.WriteString("struct" + keyCanonType(v.Type()) + "{")
		for i := range v.NumField() {
			if v.Type().Field(i).Name == "_" {
				continue
			}
			keyCanonValue(b, v.Field(i), typed)
			b.WriteString(",")
		}
		b.WriteString("}")
	default:
		panic("keyCanonValue: no form for " + v.Type().String())
	}
}

// keyFuzzCore are pool indexes (strings and their splits, numbers next to
// each other, bytes, nil, structs, math/big) whose every ordered pair the
// fuzz test encodes, so that two-argument collisions need no lucky selectors.
var keyFuzzCore = []int{0, 1, 2, 3, 5, 21, 28, 38, 39, 40, 43, 44, 52, 53, 54, 55, 56}

func FuzzKeyOf(f *testing.F) {
	// sel: low byte = number of arguments, then one index per argument; the
	// bytes after the count also add pool entries to the pairs checked.
	one := func(i int) uint64 { return 1 | uint64(i)<<8 }
	f.Add("a", "b", int64(1), 1.0, true, []byte("x"), one(2), one(3))                         // 1 vs 1.0
	f.Add("ab", "c", int64(1<<53+1), float64(1<<53), false, []byte{}, one(2), one(9))         // 2^53+1 vs float64(it)
	f.Add("a", "a", int64(0), math.Copysign(0, -1), true, []byte(nil), one(2), one(3))        // 0 vs -0.0
	f.Add("k", "k", int64(7), 7.0, false, []byte("k"), one(15), one(16))                      // maps
	f.Add("x", "y", int64(-3), math.NaN(), true, []byte("x"), uint64(0x0302), uint64(0x0803)) // NaN
	f.Add("s", "t", int64(5), 5.0, false, []byte("s"), one(0x1a), one(0x1b))                  // struct types
	f.Add("", "", int64(0), 0.0, true, []byte{}, one(0x16), one(0x17))                        // nil vs empty
	f.Add("q", "r", int64(2), 2.0, true, []byte("q"), one(0x05), one(0x1e))                   // raw vs nil bytes
	f.Add("ab", "", int64(2), 0.5, false, []byte("ab"), uint64(0x0100_0203), uint64(0x0100_0103))
	f.Add("abc", "d", int64(1), -0.5, false, []byte("abcd"), uint64(0x010002), uint64(0x272602)) // split strings
	f.Add("", "", int64(0), 0.0, false, []byte{}, one(53), one(54))                              // struct { F *rand.Rand } twice
	f.Add("ab", "", int64(2), 2.0, true, []byte("ab"), one(52), one(0x1a))                       // blank field
	f.Add("a", "b", int64(1<<40), 0x1p40, true, []byte{}, one(55), one(2))                       // big.Int vs int64
	f.Add("a", "b", int64(-3), -3.0, true, []byte{}, one(56), one(3))                            // big.Float vs float64

	f.Fuzz(func(t *testing.T, s1, s2 string, n int64, x float64, flag bool, raw []byte, selA, selB uint64) {
		// Two pools built alike, sharing no pointer or slice, so equal
		// arguments at different addresses are compared too.
		poolA := keyFuzzPool(s1, s2, n, x, flag, raw)
		poolB := keyFuzzPool(s1, s2, n, x, flag, bytesCloneKeepNil(raw))
		var lists [][]any
		for i := range poolA {
			lists = append(lists, []any{poolA[i]}, []any{poolB[i]})
		}
		core := slices.Clone(keyFuzzCore)
		for i := 1; i <= 2; i++ {
			core = append(core, int(selA>>(8*i)&0xff)%len(poolA), int(selB>>(8*i)&0xff)%len(poolA))
		}
		for _, i := range core {
			for _, j := range core {
				lists = append(lists, []any{poolA[i], poolB[j]})
			}
		}
		lists = append(lists, keyFuzzPick(poolA, selA), keyFuzzPick(poolB, selB))

		for _, typed := range []bool{false, true} {
			enc := KeyOf
			if typed {
				enc = TypedKeyOf
			}
			// Every list against every other: keys are equal exactly when
			// reference forms are.
			formOf := make(map[string]string) // key -> form
			keyOf := make(map[string]string)  // form -> key
			listOf := make(map[string][]any)  // key -> list
			for _, args := range lists {
				key, err := enc(args...)
				require.NoError(t, err)
				again, err := enc(args...)
				require.NoError(t, err)
				require.Equal(t, key, again, "determinism")
				require.Equal(t, byte(KeyVersion), key[0])

				form := keyCanon(args, typed)
				if prev, ok := formOf[key]; ok && prev != form {
					t.Fatalf("typed=%v: one key for different arguments\na=%#v\nb=%#v\nform a: %s\nform b: %s\nkey: %x",
						typed, listOf[key], args, prev, form, key)
				}
				if prev, ok := keyOf[form]; ok && prev != key {
					t.Fatalf("typed=%v: equal arguments, different keys\na=%#v\nb=%#v\nform: %s\nkey a: %x\nkey b: %x",
						typed, listOf[prev], args, form, prev, key)
				}
				formOf[key], keyOf[form], listOf[key] = form, key, args
			}
		}
	})
}

func bytesCloneKeepNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func TestHashKeyOf(t *testing.T) {
	for _, args := range [][]any{{}, {1}, {1, "a"}, {[]int{1, 2, 3}}, {map[string]int{"a": 1}}} {
		key, err := KeyOf(args...)
		require.NoError(t, err)
		h, err := HashKeyOf(args...)
		require.NoError(t, err)
		sum := sha256.Sum256([]byte(key))
		assert.Equal(t, KeyHash(sum[:16]), h, "the first 128 bits of the SHA-256 of KeyOf's key, for %v", args)
	}
	a, _ := HashKeyOf(1, "a")
	b, _ := HashKeyOf(1.0, "a")
	c, _ := HashKeyOf("a", 1)
	assert.Equal(t, a, b, "KeyOf's rules: 1 and 1.0 are one key")
	assert.NotEqual(t, a, c)
	_, err := HashKeyOf(func() {})
	assert.ErrorIs(t, err, ErrUnsupportedArgument, "KeyOf's errors")

	ta, _ := TypedHashKeyOf(1, "a")
	tb, _ := TypedHashKeyOf(1.0, "a")
	assert.NotEqual(t, ta, tb, "TypedKeyOf's rules: 1 and 1.0 differ")
	key, _ := TypedKeyOf(1, "a")
	sum := sha256.Sum256([]byte(key))
	assert.Equal(t, KeyHash(sum[:16]), ta)
}
