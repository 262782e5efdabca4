package memo

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ErrNotComparable is reported when a key holds a value Go cannot compare
// with ==, such as a slice or map inside an interface. The error returned
// wraps it and names the offending type.
var ErrNotComparable = errors.New("memo: key is not comparable")

// mayPanicOnEqual reports whether == on values of type t can panic, which is
// when t holds an interface that could carry a slice, map or func.
func mayPanicOnEqual(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Array:
		return mayPanicOnEqual(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if mayPanicOnEqual(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// selfEqual reports whether k == k; false means k holds a NaN and would leak
// a map entry per use. A k that cannot be compared gives an error wrapping
// ErrNotComparable instead of a runtime panic.
func selfEqual[K comparable](k K) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %T holds an uncomparable value (%v)", ErrNotComparable, k, r)
		}
	}()
	return k == k, nil
}

// KeyVersion is the version of the key encoding that KeyOf and TypedKeyOf
// produce. It is the first byte of every key, so keys written by a later
// encoding, which will have a higher version, never collide with keys of this
// one, even where they are kept for a long time (in Redis, say). The encoding
// of a given version never changes: a change that would give any argument
// list a different key comes with a new KeyVersion.
//
// A key of version 2 is the byte 0x02, a mode byte ('U' for KeyOf, 'T' for
// TypedKeyOf), the number of arguments (a uvarint), then each argument as a
// tag and a payload:
//
//	value                                          tag  payload
//	nil interface                                  z    none
//	bool                                           b    one byte
//	integer (and float or complex with an
//	  integral value) in int64 range               i    zigzag varint
//	integer above int64 (and a float from
//	  2^63 to 2^64)                                u    uvarint
//	other float, ±Inf, NaN (one canonical NaN)     d    8 bytes, big-endian
//	complex with an imaginary part                 c    16 bytes
//	string                                         s    length, bytes
//	[]byte (nil: Y)                                y    length, bytes
//	other slice (nil: L)                           l    length, elements
//	array                                          a    length, elements
//	map (nil: M)                                   m    length, entries sorted by their encoded bytes
//	pointer (nil: P)                               p    the value pointed to
//	struct                                         r    type name, count of fields written
//	                                                    (blank _ fields are skipped), fields
//	encoding.BinaryMarshaler (such as time.Time)   x    type name, length, MarshalBinary bytes
//	big.Int, big.Rat, big.Float                    x    type name, length, the number as text
//	                                                    (base 16; Float exact)
//
// In TypedKeyOf keys every argument and every value in an interface, unless
// nil (a bare z), is preceded by t and its type name.
const KeyVersion = 2

// ErrUnsupportedArgument is wrapped by the error KeyOf and TypedKeyOf return
// for an argument holding a value they cannot encode: a func, a channel, an
// unsafe.Pointer, cyclic data, data nested too deep, data whose key would be
// too long, or a value whose MarshalBinary fails.
var ErrUnsupportedArgument = errors.New("memo: unsupported argument")

// KeyOf encodes args into a string usable as a cache key, for memoized
// functions whose arguments are not comparable (slices, maps, structs holding
// them) or whose keys must outlive the process.
//
// The key is deterministic: the same arguments give the same key in every run
// and every process. It holds no addresses and does not depend on map
// iteration order. It is the same on every platform for values whose
// in-memory form does not depend on the platform (an int is keyed by its
// value, so its size does not matter, and math/big numbers are keyed by their
// value); but a struct whose unexported fields hold platform-dependent data,
// such as a slice of machine words or fields that differ by build tag, may
// key differently on different GOARCHes. Its first byte is KeyVersion; its
// second tells it from the keys of TypedKeyOf.
//
// The key is injective: two argument lists share a key only when they are
// equal under these rules, which follow Python's functools.lru_cache with
// typed=False:
//
//   - The number of arguments is part of the key, and every value carries a
//     tag for its kind and, where its length varies, a length, so ("ab", "c")
//     and ("a", "bc") differ.
//   - Numbers are keyed by their value, not their type: 1, int64(1),
//     uint8(1), 1.0, float32(1) and complex(1, 0) share a key; 1<<53+1 and
//     float64(1<<53) do not. -0.0 shares the key of 0. Every NaN shares one
//     key, so a call with a NaN argument is cached like any other (unlike a
//     comparable map key, where NaN != NaN).
//   - Bools, strings and []byte never share a key with numbers, nor with
//     each other.
//   - A value of a named type such as `type Celsius float64` or `type ID
//     string` is keyed like its underlying kind.
//   - A slice and an array with equal elements differ (like a Python list
//     and tuple), and so do a nil slice and an empty one, and a nil map and
//     an empty one: a function may treat them differently (as JSON null and
//     [], for one). A []byte (any slice of a byte kind) is keyed as bytes,
//     apart from a slice of numbers.
//   - Slices and arrays are keyed by their elements, so []int{1} and
//     []int64{1} share a key, as do []any{1} and []int{1}. Two nil slices
//     share a key whatever their element types, except that a nil []byte is
//     bytes, apart from a nil slice of another element kind (as an empty
//     []byte is apart from an empty []int). Two nil maps share a key whatever
//     their types, and so do two nil pointers.
//   - Maps are keyed by their entries in an order that does not depend on
//     iteration: sorted by the bytes of their encoded keys, ties (keys of
//     different types equal in value) broken by encoded values.
//   - Structs are always keyed with their type name (package path and
//     name; for an unnamed struct type, its fields with their names, tags
//     and types, with package paths), then every field in order, unexported
//     ones included, so two struct types with equal fields differ. Blank (_)
//     fields are skipped, as == does. (Two types declared with one name in
//     different functions of one package have one name, and are told apart
//     only by their fields.)
//   - Pointers are followed: two pointers to equal data share a key, whatever
//     their addresses (value semantics). A nil pointer, a pointer to a zero
//     value and the value itself all differ. Data reachable from itself
//     (a cycle of pointers, slices or maps) gives an error.
//   - An interface is keyed by its dynamic value; a nil interface differs
//     from an interface holding a nil pointer.
//   - A value whose type has MarshalBinary (encoding.BinaryMarshaler) in its
//     own method set, time.Time among them, is keyed by the bytes
//     MarshalBinary returns, tagged with its type name, instead of by its
//     fields (time.Time's *Location carries caches that differ between
//     processes). Two Times thus share a key when they are the same instant
//     with the same UTC offset, whatever their monotonic readings and zone
//     names (UTC itself is apart from other zones at offset 0). This
//     applies to every such type, not a fixed list, so a type can choose its
//     key by implementing MarshalBinary, except where the method is only
//     promoted from an embedded field (it would drop the other fields): such
//     a struct is walked field by field. MarshalBinary is not called through
//     pointer receivers, and cannot be called on a value held in an
//     unexported field, which gives an error.
//   - math/big's Int, Rat and Float, held by value or through pointers, are
//     keyed by their value alike on every platform, as a BinaryMarshaler
//     would be: their type name, then the number as text (Int in base 16,
//     Rat as numerator/denominator in base 16, Float in the exact 'p' format,
//     whatever its precision, with -0 as 0). Python would merge them with
//     the numbers of equal value, but memo keeps them apart by their type
//     name: big.NewInt(1) shares no key with 1, nor with big.NewRat(1, 1). A
//     math/big value held by value in an unexported field of a value that
//     cannot be addressed cannot be read and gives an error; hold it through
//     a pointer.
//
// Funcs (nil ones too), channels, unsafe.Pointers and time.Location values
// (whose caches differ between processes) cannot be encoded; neither can
// cyclic data, data nested more than 10000 pointers, slices, maps and
// interfaces deep, data whose key would be longer than 64 MiB (shared
// sub-values count once per path to them), data whose maps, nested deep
// around large values, would need more than 256 MiB moved to sort their
// entries, nor a value whose MarshalBinary fails (time.Time's does for a zone
// offset of -1 minute). These limits bound the work of building any key. The
// error then starts with "memo:", names the argument's position (from 0) and
// type, and wraps ErrUnsupportedArgument. KeyOf never panics: a panic while
// encoding, in a MarshalBinary say, is returned as such an error.
func KeyOf(args ...any) (string, error) {
	return buildKey(false, args)
}

// TypedKeyOf is KeyOf with the types of the arguments part of the key, like
// Python's functools.lru_cache with typed=True: 1 and int64(1) differ, and so
// do Celsius(1) and float64(1). Every argument, and every value held in an
// interface, carries its type's name: package path and name for a named type,
// the composition of its parts, with package paths, for an unnamed one (such
// as "[]example.com/pkg.T" or "struct { F *math/rand.Rand }"). The rules of
// KeyOf otherwise hold; in particular numerically equal values of one type,
// such as 0.0 and -0.0, still share a key. A TypedKeyOf key never equals a
// KeyOf key: their second bytes differ.
func TypedKeyOf(args ...any) (string, error) {
	return buildKey(true, args)
}

// Tags of the key encoding. Every encoded value starts with one of them, and
// what follows each is either of fixed length or starts with its length, so
// an encoded value is never the prefix of another. Arguments and values held
// in interfaces are the only places whose type the reader cannot know from
// the outer type; in typed keys they start with tagType or tagNil.
const (
	modeUntyped = 'U' // second byte of a KeyOf key
	modeTyped   = 'T' // second byte of a TypedKeyOf key

	tagNil      = 'z' // nil interface; nothing follows
	tagType     = 't' // typed keys only: type name (uvarint length, bytes), then the value
	tagBool     = 'b' // one byte, 0 or 1
	tagInt      = 'i' // integer in int64's range: zigzag varint
	tagUint     = 'u' // integer above math.MaxInt64: uvarint
	tagFloat    = 'd' // number that is not an integer (or ±Inf, NaN): IEEE 754 bits, big-endian
	tagComplex  = 'c' // complex number with non-zero imaginary part: real bits, imaginary bits
	tagString   = 's' // uvarint length, bytes
	tagBytes    = 'y' // slice of a byte kind: uvarint length, bytes
	tagNilBytes = 'Y' // nil slice of a byte kind
	tagList     = 'l' // slice: uvarint length, elements
	tagNilList  = 'L' // nil slice
	tagArray    = 'a' // array: uvarint length, elements
	tagMap      = 'm' // map: uvarint length, sorted (key, value) pairs
	tagNilMap   = 'M' // nil map
	tagPointer  = 'p' // non-nil pointer: the pointed-to value
	tagNilPtr   = 'P' // nil pointer
	tagStruct   = 'r' // struct: type name, uvarint count of fields written, fields in order (blank ones skipped)
	tagMarshal  = 'x' // BinaryMarshaler or math/big number: type name, uvarint length, bytes
)

// canonicalNaN is the bit pattern every NaN is encoded as (that of math.NaN).
const canonicalNaN = 0x7FF8000000000001

// cycleCheckDepth is how many pointers, slices and maps deep a value is
// walked before the walk starts checking for cycles. A cycle makes the walk
// go on forever, so it gets past this depth and is found within one more turn
// of the cycle; values of ordinary depth pay nothing for the checks.
const cycleCheckDepth = 64

// maxKeyDepth is how many pointers, slices, maps and interfaces may be nested
// on one path through a value. The walk recurses once per level, and past
// this depth it stops with an error rather than risk overflowing the stack,
// which would end the process. (Arrays and structs do not count: their types
// bound their depth.)
const maxKeyDepth = 10000

// maxKeyLen is the length of the longest key. Every value written appends at
// least one byte, so the bound also bounds the work of encoding data that
// shares sub-values, which are written once for each path to them.
const maxKeyLen = 1 << 26

// maxKeyMoved bounds the bytes moved to sort map entries while one key is
// built. A map's entries are sorted by moving their encoded bytes, nested
// maps included, so maps nested n deep move what is inside the innermost one
// n times: the bound keeps that work linear in maxKeyLen.
const maxKeyMoved = 4 * maxKeyLen

// maxPooledBuffer bounds the buffers kept for reuse.
const maxPooledBuffer = 64 << 10

// encoder builds one key; encoders and their buffers are reused via encPool.
type encoder struct {
	buf     []byte
	typed   bool
	depth   int                // pointers, slices, maps and interfaces entered on the current path
	seen    map[visit]struct{} // those entered past cycleCheckDepth on the current path
	spans   []span             // map entries being sorted, innermost map last
	scratch []byte             // a copy of one map's entries while they are sorted
	moved   int                // bytes moved so far to sort map entries
}

// span is where one map entry is, from the start of its map's entries.
type span struct{ from, to int }

// visit identifies a pointer, slice or map on the current path. The type is
// part of it because a struct and its first field share an address.
type visit struct {
	ptr uintptr
	n   int
	typ reflect.Type
}

var encPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 128)} }}

func buildKey(typed bool, args []any) (string, error) {
	return encode(typed, args, func(b []byte) string { return string(b) })
}

// KeyHash is a key of fixed size for arguments too big to keep as their
// encoding: see HashKeyOf. It is comparable, so it can be the key type of
// MemoizeKeyed.
type KeyHash [16]byte

// HashKeyOf returns the first 128 bits of the SHA-256 of KeyOf's encoding of
// args: a key of 16 bytes however big the arguments, where KeyOf's key is as
// large as they are (a million-element []int makes a key of several MB, kept
// in the cache for as long as the entry). The encoding is built, hashed and
// dropped; its rules, and its errors, are KeyOf's.
//
// Two different argument lists share a KeyHash only if SHA-256 collides on
// its first 128 bits: among n distinct keys, with probability about
// n*n/2^129, which is below 10^-20 for a billion keys. Use it when arguments
// are big; KeyOf's exact keys cost no hashing and are never shared.
func HashKeyOf(args ...any) (KeyHash, error) {
	return encode(false, args, hashKey)
}

// TypedHashKeyOf is HashKeyOf of TypedKeyOf's encoding: arguments of
// different types stay apart, as with Typed. (Typed has no effect on keys
// that a MemoizeKeyed key function builds: choose the function.)
func TypedHashKeyOf(args ...any) (KeyHash, error) {
	return encode(true, args, hashKey)
}

// hashKey returns the first 128 bits of the SHA-256 of an encoding.
func hashKey(b []byte) KeyHash {
	sum := sha256.Sum256(b)
	return KeyHash(sum[:16])
}

// encode encodes args with a pooled encoder and returns what done makes of
// the encoding, which it must not keep.
func encode[R any](typed bool, args []any, done func([]byte) R) (R, error) {
	e := encPool.Get().(*encoder)
	e.typed = typed
	var r R
	err := e.key(args)
	if err == nil {
		r = done(e.buf)
	}
	if cap(e.buf) <= maxPooledBuffer && cap(e.scratch) <= maxPooledBuffer && cap(e.spans) <= maxPooledBuffer {
		e.buf = e.buf[:0]
		e.depth = 0
		e.moved = 0
		e.seen = nil
		e.spans = e.spans[:0]
		encPool.Put(e)
	}
	return r, err
}

// key encodes args into e.buf; it turns any error or panic into an error
// naming the argument being encoded.
func (e *encoder) key(args []any) (err error) {
	i := 0
	defer func() {
		if r := recover(); r != nil {
			err = &keyError{reason: fmt.Sprintf("panic while building a key: %v", r)}
		}
		if ke, ok := err.(*keyError); ok {
			ke.arg = i
			ke.argType = "nil"
			if i < len(args) && args[i] != nil {
				ke.argType = reflect.TypeOf(args[i]).String()
			}
		}
	}()
	mode := byte(modeUntyped)
	if e.typed {
		mode = modeTyped
	}
	e.buf = append(e.buf, KeyVersion, mode)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(args)))
	for ; i < len(args); i++ {
		if err := e.any(args[i]); err != nil {
			return err
		}
		if len(e.buf) > maxKeyLen {
			return errTooLong()
		}
	}
	return nil
}

// errTooLong is the error for a key longer than maxKeyLen.
func errTooLong() error {
	return &keyError{reason: fmt.Sprintf("the key would be longer than %d MiB (%d bytes), so it cannot be built", maxKeyLen>>20, maxKeyLen), noPath: true}
}

// Type names written by the fast path of typed keys; each is what typeName
// gives for the type.
const (
	nameBool       = "bool"
	nameInt        = "int"
	nameInt8       = "int8"
	nameInt16      = "int16"
	nameInt32      = "int32"
	nameInt64      = "int64"
	nameUint       = "uint"
	nameUint8      = "uint8"
	nameUint16     = "uint16"
	nameUint32     = "uint32"
	nameUint64     = "uint64"
	nameUintptr    = "uintptr"
	nameFloat32    = "float32"
	nameFloat64    = "float64"
	nameComplex64  = "complex64"
	nameComplex128 = "complex128"
	nameString     = "string"
	nameBytes      = "[]uint8"
	nameInts       = "[]int"
	nameStrings    = "[]string"
)

// any encodes an argument. Common types take a reflection-free path that
// writes exactly what value writes for them (as value does for a value held
// in an interface within an argument); the rest go to value. The caller
// checks the key's length after each argument, which bounds the fast paths:
// they do work in proportion to the argument's own length.
func (e *encoder) any(x any) error {
	switch x := x.(type) {
	case nil:
		e.buf = append(e.buf, tagNil)
	case bool:
		e.typeTag(nameBool)
		e.bool(x)
	case int:
		e.typeTag(nameInt)
		e.int(int64(x))
	case int8:
		e.typeTag(nameInt8)
		e.int(int64(x))
	case int16:
		e.typeTag(nameInt16)
		e.int(int64(x))
	case int32:
		e.typeTag(nameInt32)
		e.int(int64(x))
	case int64:
		e.typeTag(nameInt64)
		e.int(x)
	case uint:
		e.typeTag(nameUint)
		e.uint(uint64(x))
	case uint8:
		e.typeTag(nameUint8)
		e.uint(uint64(x))
	case uint16:
		e.typeTag(nameUint16)
		e.uint(uint64(x))
	case uint32:
		e.typeTag(nameUint32)
		e.uint(uint64(x))
	case uint64:
		e.typeTag(nameUint64)
		e.uint(x)
	case uintptr:
		e.typeTag(nameUintptr)
		e.uint(uint64(x))
	case float32:
		e.typeTag(nameFloat32)
		e.float(float64(x))
	case float64:
		e.typeTag(nameFloat64)
		e.float(x)
	case complex64:
		e.typeTag(nameComplex64)
		e.complex(complex128(x))
	case complex128:
		e.typeTag(nameComplex128)
		e.complex(x)
	case string:
		e.typeTag(nameString)
		e.string(tagString, x)
	case []byte:
		e.typeTag(nameBytes)
		e.bytes(x)
	case []int:
		e.typeTag(nameInts)
		if x == nil {
			e.buf = append(e.buf, tagNilList)
			break
		}
		e.buf = append(e.buf, tagList)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(x)))
		for _, n := range x {
			e.int(int64(n))
		}
	case []string:
		e.typeTag(nameStrings)
		if x == nil {
			e.buf = append(e.buf, tagNilList)
			break
		}
		e.buf = append(e.buf, tagList)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(x)))
		for _, s := range x {
			e.string(tagString, s)
		}
	default:
		v := reflect.ValueOf(x)
		if e.typed {
			e.typeTag(typeInfoOf(v.Type()).name)
		}
		return e.value(v)
	}
	return nil
}

// typeTag writes the type name that starts a value held in an interface, in
// typed keys only.
func (e *encoder) typeTag(name string) {
	if e.typed {
		e.string(tagType, name)
	}
}

func (e *encoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, tagBool, 1)
	} else {
		e.buf = append(e.buf, tagBool, 0)
	}
}

func (e *encoder) int(i int64) {
	e.buf = append(e.buf, tagInt)
	e.buf = binary.AppendVarint(e.buf, i)
}

func (e *encoder) uint(u uint64) {
	if u <= math.MaxInt64 {
		e.int(int64(u))
		return
	}
	e.buf = append(e.buf, tagUint)
	e.buf = binary.AppendUvarint(e.buf, u)
}

// float encodes f as the integer it equals, if it is one that int64 or uint64
// can hold, and otherwise by its bits, with every NaN made one.
func (e *encoder) float(f float64) {
	if f >= -0x1p63 && f < 0x1p63 {
		if i := int64(f); float64(i) == f { // -0.0 becomes 0 here
			e.int(i)
			return
		}
	} else if f >= 0x1p63 && f < 0x1p64 {
		// Every float64 this large is an integer.
		e.uint(uint64(f))
		return
	}
	e.buf = append(e.buf, tagFloat)
	e.buf = binary.BigEndian.AppendUint64(e.buf, floatBits(f))
}

// floatBits is f's bits with -0.0 made 0.0 and every NaN made one.
func floatBits(f float64) uint64 {
	switch {
	case f != f:
		return canonicalNaN
	case f == 0:
		return 0
	}
	return math.Float64bits(f)
}

func (e *encoder) complex(c complex128) {
	if imag(c) == 0 {
		e.float(real(c))
		return
	}
	e.buf = append(e.buf, tagComplex)
	e.buf = binary.BigEndian.AppendUint64(e.buf, floatBits(real(c)))
	e.buf = binary.BigEndian.AppendUint64(e.buf, floatBits(imag(c)))
}

// string writes tag, then s with its length.
func (e *encoder) string(tag byte, s string) {
	e.buf = append(e.buf, tag)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bytes(b []byte) {
	if b == nil {
		e.buf = append(e.buf, tagNilBytes)
		return
	}
	e.buf = append(e.buf, tagBytes)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// value encodes v by its kind. v may have been reached through unexported
// fields, so only kind-specific getters are used, never Interface, except to
// call MarshalBinary where v.CanInterface and to read math/big numbers. It
// refuses to go on once the key is longer than maxKeyLen: every call writes
// at least one byte, so that bounds the calls.
func (e *encoder) value(v reflect.Value) error {
	if len(e.buf) > maxKeyLen {
		return errTooLong()
	}
	t := v.Type()
	k := t.Kind()
	var ti *typeInfo
	if k == reflect.Struct || (t.NumMethod() > 0 && k != reflect.Pointer && k != reflect.Interface) {
		ti = typeInfoOf(t)
		switch {
		case ti.marshal:
			return e.marshal(v, ti)
		case ti.big != notBig:
			return e.bigNumber(v, ti)
		case ti.forbidden != "":
			return &keyError{typ: t, reason: ti.forbidden}
		}
	}
	switch k {
	case reflect.Bool:
		e.bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.float(v.Float())
	case reflect.Complex64, reflect.Complex128:
		e.complex(v.Complex())
	case reflect.String:
		e.string(tagString, v.String())
	case reflect.Interface:
		if v.IsNil() {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		if err := e.descend(); err != nil {
			return err
		}
		el := v.Elem()
		if e.typed {
			e.typeTag(typeInfoOf(el.Type()).name)
		}
		err := e.value(el)
		e.depth--
		return err
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, tagNilPtr)
			return nil
		}
		if err := e.enter(v, 0); err != nil {
			return err
		}
		e.buf = append(e.buf, tagPointer)
		err := e.value(v.Elem())
		e.leave(v, 0)
		return err
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			e.bytes(v.Bytes())
			return nil
		}
		if v.IsNil() {
			e.buf = append(e.buf, tagNilList)
			return nil
		}
		n := v.Len()
		e.buf = append(e.buf, tagList)
		e.buf = binary.AppendUvarint(e.buf, uint64(n))
		if n == 0 {
			return nil
		}
		if err := e.enter(v, n); err != nil {
			return err
		}
		err := e.elems(v, n)
		e.leave(v, n)
		return err
	case reflect.Array:
		n := v.Len()
		e.buf = append(e.buf, tagArray)
		e.buf = binary.AppendUvarint(e.buf, uint64(n))
		return e.elems(v, n)
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, tagNilMap)
			return nil
		}
		n := v.Len()
		e.buf = append(e.buf, tagMap)
		e.buf = binary.AppendUvarint(e.buf, uint64(n))
		if n == 0 {
			return nil
		}
		if err := e.enter(v, 0); err != nil {
			return err
		}
		err := e.mapEntries(v)
		e.leave(v, 0)
		return err
	case reflect.Struct:
		e.string(tagStruct, ti.name)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(ti.fields)))
		for _, i := range ti.fields {
			if err := e.value(v.Field(i)); err != nil {
				return at(err, "."+t.Field(i).Name)
			}
		}
	default: // Func, Chan, UnsafePointer
		return &keyError{typ: t, reason: "cannot be part of a key"}
	}
	return nil
}

func (e *encoder) elems(v reflect.Value, n int) error {
	for i := range n {
		if err := e.value(v.Index(i)); err != nil {
			return at(err, "["+strconv.Itoa(i)+"]")
		}
	}
	return nil
}

// mapEntries encodes each entry of the map v after the others, then sorts
// the entries' bytes. As encoded values are prefix-free, sorting key+value
// bytes sorts by key, then by value.
func (e *encoder) mapEntries(v reflect.Value) error {
	start := len(e.buf)
	base := len(e.spans) // e.spans is a stack shared with nested maps
	var iter reflect.MapIter
	iter.Reset(v)
	// Where the map may be read freely, each entry is copied into one pair of
	// variables rather than into new ones.
	reuse := v.CanInterface()
	var k, val reflect.Value
	if reuse {
		t := v.Type()
		k, val = reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	}
	for iter.Next() {
		from := len(e.buf)
		if reuse {
			k.SetIterKey(&iter)
			val.SetIterValue(&iter)
		} else {
			k, val = iter.Key(), iter.Value()
		}
		if err := e.value(k); err != nil {
			return at(err, "[map key]")
		}
		if err := e.value(val); err != nil {
			return at(err, "[map value]")
		}
		e.spans = append(e.spans, span{from - start, len(e.buf) - start})
	}
	// A single entry is in order already; not copying it keeps a deep chain
	// of one-entry maps linear.
	if entries := e.spans[base:]; len(entries) > 1 {
		if e.moved += len(e.buf) - start; e.moved > maxKeyMoved {
			e.spans = e.spans[:base]
			return &keyError{reason: fmt.Sprintf("sorting its maps' entries would move more than %d MiB: maps nested deep around large values", maxKeyMoved>>20), noPath: true}
		}
		e.scratch = append(e.scratch[:0], e.buf[start:]...)
		all := e.scratch
		slices.SortFunc(entries, func(a, b span) int {
			return bytes.Compare(all[a.from:a.to], all[b.from:b.to])
		})
		e.buf = e.buf[:start]
		for _, entry := range entries {
			e.buf = append(e.buf, all[entry.from:entry.to]...)
		}
	}
	e.spans = e.spans[:base]
	return nil
}

// descend records that the walk goes one pointer, slice, map or interface
// deeper, and refuses to go past maxKeyDepth. The caller decrements e.depth
// when it comes back.
func (e *encoder) descend() error {
	if e.depth >= maxKeyDepth {
		return &keyError{reason: "the value is nested more than " + strconv.Itoa(maxKeyDepth) + " levels deep, so it cannot be part of a key", noPath: true}
	}
	e.depth++
	return nil
}

// enter records that the walk goes into the pointer, slice or map v, and
// reports a cycle when v is already on the path. Checks start only deep in a
// value, so shallow ones cost nothing.
func (e *encoder) enter(v reflect.Value, n int) error {
	if err := e.descend(); err != nil {
		return err
	}
	if e.depth <= cycleCheckDepth {
		return nil
	}
	key := visit{v.Pointer(), n, v.Type()}
	if _, ok := e.seen[key]; ok {
		e.depth--
		return &keyError{typ: v.Type(), reason: "cyclic data (reachable from itself) cannot be part of a key", noPath: true}
	}
	if e.seen == nil {
		e.seen = make(map[visit]struct{})
	}
	e.seen[key] = struct{}{}
	return nil
}

func (e *encoder) leave(v reflect.Value, n int) {
	if e.depth > cycleCheckDepth {
		delete(e.seen, visit{v.Pointer(), n, v.Type()})
	}
	e.depth--
}

// marshal encodes a BinaryMarshaler by its type name and the bytes
// MarshalBinary gives.
func (e *encoder) marshal(v reflect.Value, ti *typeInfo) error {
	if !v.CanInterface() {
		return &keyError{typ: v.Type(), reason: "implements encoding.BinaryMarshaler but is in an unexported field, so it cannot be part of a key"}
	}
	data, err := v.Interface().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return &keyError{typ: v.Type(), reason: "MarshalBinary failed, so it cannot be part of a key", cause: err}
	}
	e.marshaled(ti.name, data)
	return nil
}

// marshaled writes the bytes data that stand for a value of the type named
// name.
func (e *encoder) marshaled(name string, data []byte) {
	e.string(tagMarshal, name)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(data)))
	e.buf = append(e.buf, data...)
}

// bigNumber encodes a math/big Int, Rat or Float by its value, as text that
// does not depend on the size of machine words (their digits are words).
func (e *encoder) bigNumber(v reflect.Value, ti *typeInfo) error {
	var p reflect.Value // a pointer to v's number
	switch {
	case v.CanAddr():
		// Even where v was reached through unexported fields, the methods
		// that read the number may be called through its address.
		p = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr()))
	case v.CanInterface():
		p = reflect.New(v.Type())
		p.Elem().Set(v)
	default:
		return &keyError{typ: v.Type(), reason: "a math/big value held by value where it cannot be read (in an unexported field) must be held through a pointer to be part of a key"}
	}
	var text string
	switch ti.big {
	case bigInt:
		text = p.Interface().(*big.Int).Text(16)
	case bigRat:
		r := p.Interface().(*big.Rat)
		text = r.Num().Text(16) + "/" + r.Denom().Text(16)
	case bigFloat:
		if f := p.Interface().(*big.Float); f.Sign() == 0 {
			text = "0" // for -0 too
		} else {
			text = f.Text('p', 0)
		}
	}
	e.marshaled(ti.name, []byte(text))
	return nil
}

// typeInfo is what the encoder needs to know of a type, computed once.
type typeInfo struct {
	name      string  // deterministic name, see typeName
	marshal   bool    // encoded by its own MarshalBinary
	big       bigKind // a math/big number, encoded by its value
	forbidden string  // why the type cannot be encoded, or ""
	fields    []int   // for a struct, the indexes of its fields that are written: all but blank ones
}

// bigKind tells which math/big number a type is, if any.
type bigKind uint8

const (
	notBig bigKind = iota
	bigInt
	bigRat
	bigFloat
)

var (
	typeInfos       sync.Map // reflect.Type -> *typeInfo
	marshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	timeLocationTyp = reflect.TypeFor[time.Location]()
	bigKinds        = map[reflect.Type]bigKind{
		reflect.TypeFor[big.Int]():   bigInt,
		reflect.TypeFor[big.Rat]():   bigRat,
		reflect.TypeFor[big.Float](): bigFloat,
	}
)

func typeInfoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{name: typeName(t), big: bigKinds[t]}
	k := t.Kind()
	if k != reflect.Pointer && k != reflect.Interface && t.Implements(marshalerType) && !promotesMarshaler(t) {
		ti.marshal = true
	}
	if t == timeLocationTyp {
		ti.forbidden = "holds caches that differ between processes, so it cannot be part of a key"
	}
	if k == reflect.Struct {
		for i := range t.NumField() {
			if t.Field(i).Name != "_" {
				ti.fields = append(ti.fields, i)
			}
		}
	}
	got, _ := typeInfos.LoadOrStore(t, ti)
	return got.(*typeInfo)
}

// promotesMarshaler reports whether the struct type t may have MarshalBinary
// only through an embedded field, which would leave its other fields out of
// the key. (A struct that also declares its own MarshalBinary is walked too:
// reflect cannot tell the two apart.)
func promotesMarshaler(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type.Implements(marshalerType) {
			return true
		}
	}
	return false
}

// typeName names t the same way in every process, and gives two types one
// name only if they are identical (but for types declared with one name in
// different functions of one package): package path and name for a named
// type (reflect names a generic instance's type arguments with their package
// paths), the predeclared name for a predeclared one, and for an unnamed one
// its composition, built from the names of its parts where reflect would
// print only package names. The composition follows Go's syntax, with package
// paths, and with "embedded" before an embedded field of a struct; an
// unexported field or method name is qualified by its package path, as such
// names from different packages differ.
func typeName(t reflect.Type) string {
	if name := t.Name(); name != "" {
		return qualified(t.PkgPath(), name)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	case reflect.Chan:
		switch t.ChanDir() {
		case reflect.RecvDir:
			return "<-chan " + typeName(t.Elem())
		case reflect.SendDir:
			return "chan<- " + typeName(t.Elem())
		}
		if el := t.Elem(); el.Kind() == reflect.Chan && el.Name() == "" && el.ChanDir() == reflect.RecvDir {
			return "chan (" + typeName(el) + ")" // as "chan <-chan T" is "chan<- chan T"
		}
		return "chan " + typeName(t.Elem())
	case reflect.Func:
		return "func" + signature(t)
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "interface {}"
		}
		methods := make([]string, t.NumMethod())
		for i := range methods {
			m := t.Method(i)
			methods[i] = qualified(m.PkgPath, m.Name) + signature(m.Type)
		}
		slices.Sort(methods)
		return "interface { " + strings.Join(methods, "; ") + " }"
	}
	// The kind left is Struct.
	if t.NumField() == 0 {
		return "struct {}"
	}
	var b strings.Builder
	b.WriteString("struct { ")
	for i := range t.NumField() {
		f := t.Field(i)
		if i > 0 {
			b.WriteString("; ")
		}
		if f.Anonymous {
			b.WriteString("embedded ")
		}
		b.WriteString(qualified(f.PkgPath, f.Name))
		b.WriteString(" ")
		b.WriteString(typeName(f.Type))
		if f.Tag != "" {
			b.WriteString(" ")
			b.WriteString(strconv.Quote(string(f.Tag)))
		}
	}
	b.WriteString(" }")
	return b.String()
}

// qualified returns name, prefixed by pkgPath when that is not empty: the
// package of a named type, or of an unexported field or method name.
func qualified(pkgPath, name string) string {
	if pkgPath == "" {
		return name
	}
	return pkgPath + "." + name
}

// signature names the parameters and results of the func type t, as Go
// writes them after "func".
func signature(t reflect.Type) string {
	var b strings.Builder
	b.WriteString("(")
	for i := range t.NumIn() {
		if i > 0 {
			b.WriteString(", ")
		}
		if t.IsVariadic() && i == t.NumIn()-1 {
			b.WriteString("..." + typeName(t.In(i).Elem()))
		} else {
			b.WriteString(typeName(t.In(i)))
		}
	}
	b.WriteString(")")
	switch t.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + typeName(t.Out(0)))
	default:
		b.WriteString(" (")
		for i := range t.NumOut() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(typeName(t.Out(i)))
		}
		b.WriteString(")")
	}
	return b.String()
}

// keyError is the error of KeyOf and TypedKeyOf.
type keyError struct {
	arg     int          // position of the argument
	argType string       // its type, as reflect prints it
	typ     reflect.Type // the type of the value that cannot be encoded, if known
	at      []string     // where that value is in the argument, innermost first
	noPath  bool         // leave at empty (it would be long for a cycle)
	reason  string
	cause   error
}

// at records that err happened in the part elem of a value.
func at(err error, elem string) error {
	if ke, ok := err.(*keyError); ok && !ke.noPath {
		ke.at = append(ke.at, elem)
	}
	return err
}

func (e *keyError) Error() string {
	var b strings.Builder
	b.WriteString("memo: argument ")
	b.WriteString(strconv.Itoa(e.arg))
	b.WriteString(" (")
	b.WriteString(e.argType)
	b.WriteString("): ")
	if e.typ != nil && (len(e.at) > 0 || e.typ.String() != e.argType) {
		b.WriteString(e.typ.String())
		if len(e.at) > 0 {
			b.WriteString(" at ")
			for i := len(e.at) - 1; i >= 0; i-- {
				b.WriteString(e.at[i])
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(e.reason)
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

func (e *keyError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrUnsupportedArgument, e.cause}
	}
	return []error{ErrUnsupportedArgument}
}
