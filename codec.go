package memo

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"reflect"
)

// Codec turns the values of a shared cache into bytes and back (see
// Sharing). Unmarshal is given a pointer to a zero value of the cache's value
// type. A Codec must give back a value equal to the one it was given, or fail:
// a value that comes back different is a wrong answer served to every
// process. encoding/json's Marshal and Unmarshal have the right shape for a
// Codec of types that JSON carries exactly.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// gobCodec is the default Codec: encoding/gob, for value types that
// gobRefuses accepts.
type gobCodec struct{}

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

var (
	gobEncoderType      = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// gobRefuses returns why gob cannot carry every value of type t exactly, or
// "" if it can. gob drops unexported fields without a word, and needs every
// concrete type behind an interface registered; types that encode themselves
// (GobEncoder, BinaryMarshaler, as time.Time does) are taken at their word.
// seen holds the types being checked, for recursive types.
func gobRefuses(t reflect.Type, seen map[reflect.Type]bool) string {
	if seen[t] {
		return ""
	}
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	seen[t] = true
	if t.Implements(gobEncoderType) || reflect.PointerTo(t).Implements(gobEncoderType) ||
		t.Implements(binaryMarshalerType) || reflect.PointerTo(t).Implements(binaryMarshalerType) {
		return ""
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return ""
	case reflect.Array, reflect.Slice, reflect.Pointer:
		return gobRefuses(t.Elem(), seen)
	case reflect.Map:
		if why := gobRefuses(t.Key(), seen); why != "" {
			return why
		}
		return gobRefuses(t.Elem(), seen)
	case reflect.Struct:
		exported := 0
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return fmt.Sprintf("%v's field %s is unexported, and gob would drop it", t, f.Name)
			}
			exported++
			if why := gobRefuses(f.Type, seen); why != "" {
				return why
			}
		}
		if exported == 0 {
			return fmt.Sprintf("%v has no fields, which gob refuses", t)
		}
		return ""
	case reflect.Interface:
		return fmt.Sprintf("%v is an interface, whose concrete types gob needs registered", t)
	}
	return fmt.Sprintf("%v is a %v, which gob cannot encode", t, t.Kind())
}

// localOnly returns why a key of type t, or the key v when t is nil, means
// something only inside one process (it holds a pointer, a channel, a func
// or an unsafe.Pointer, compared by address), or "". An interface type is
// accepted, since what it holds is only known call by call: v is then
// checked by its dynamic values. seen guards recursive types.
func localOnly(t reflect.Type, v reflect.Value) string {
	if t == nil {
		t = v.Type()
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return fmt.Sprintf("it holds a %v, which is compared by address", t)
	case reflect.Array:
		for i := range t.Len() {
			var e reflect.Value
			if v.IsValid() {
				e = v.Index(i)
			}
			if why := localOnly(t.Elem(), e); why != "" {
				return why
			}
			if !v.IsValid() {
				break // the elements share a type
			}
		}
	case reflect.Struct:
		for i := range t.NumField() {
			var f reflect.Value
			if v.IsValid() {
				f = v.Field(i)
			}
			if why := localOnly(t.Field(i).Type, f); why != "" {
				return why
			}
		}
	case reflect.Interface:
		if v.IsValid() && !v.IsNil() {
			return localOnly(nil, v.Elem())
		}
	}
	return ""
}

// fingerprint returns a hash of t's structure: its name and, recursively, its
// kind, fields (names, tags, types) and elements. Values of two types with
// one fingerprint decode into each other; a stored value whose fingerprint
// is not the cache's is ignored, so two versions of a program sharing a
// namespace never decode each other's values.
func fingerprint(t reflect.Type) uint64 {
	h := fnv.New64a()
	describe(h, t, map[reflect.Type]bool{})
	return h.Sum64()
}

// describe writes t's structure to w, naming types already in seen only.
func describe(w interface{ Write([]byte) (int, error) }, t reflect.Type, seen map[reflect.Type]bool) {
	fmt.Fprintf(w, "(%s %s.%s", t.Kind(), t.PkgPath(), t.Name())
	if seen[t] {
		w.Write([]byte(")"))
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Array:
		fmt.Fprintf(w, " %d", t.Len())
		describe(w, t.Elem(), seen)
	case reflect.Slice, reflect.Pointer, reflect.Chan:
		describe(w, t.Elem(), seen)
	case reflect.Map:
		describe(w, t.Key(), seen)
		describe(w, t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(w, " %q %q", f.Name, f.Tag)
			describe(w, f.Type, seen)
		}
	}
	w.Write([]byte(")"))
}

// A stored value's frame: a magic byte, the frame's version, the
// fingerprint of the value's type (8 bytes), a CRC-32C (4 bytes) of the
// namespace, the key, the bytes before it and the body, then the body the
// Codec wrote.
const (
	frameMagic   = 'm'
	frameVersion = 1
	frameLen     = 14
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// errForeign is unframe's error for a value framed for another type or
	// by another version of the frame: a miss, not a fault.
	errForeign = errors.New("memo: stored for another type")
)

// frame frames body, a value of the type with fingerprint fp stored under
// key in ns.
func frame(ns, key string, fp uint64, body []byte) []byte {
	b := make([]byte, frameLen, frameLen+len(body))
	b[0], b[1] = frameMagic, frameVersion
	binary.BigEndian.PutUint64(b[2:10], fp)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[10:14], checksum(ns, key, b))
	return b
}

// unframe returns the body of b, read from key in ns for a value type with
// fingerprint fp: errForeign if it was framed for another type, and an error
// if it is damaged.
func unframe(ns, key string, fp uint64, b []byte) ([]byte, error) {
	if len(b) < frameLen {
		return nil, fmt.Errorf("memo: the stored value is damaged: %d bytes, shorter than a frame", len(b))
	}
	if b[0] != frameMagic || b[1] != frameVersion {
		return nil, errForeign
	}
	if got, want := binary.BigEndian.Uint32(b[10:14]), checksum(ns, key, b); got != want {
		return nil, fmt.Errorf("memo: the stored value is damaged: checksum %08x, want %08x", got, want)
	}
	if binary.BigEndian.Uint64(b[2:10]) != fp {
		return nil, errForeign
	}
	return b[frameLen:], nil
}

// checksum returns the CRC-32C of ns, key and the frame b but for its
// checksum field.
func checksum(ns, key string, b []byte) uint32 {
	var n [2 * binary.MaxVarintLen64]byte
	l := binary.PutUvarint(n[:], uint64(len(ns)))
	l += binary.PutUvarint(n[l:], uint64(len(key)))
	c := crc32.Update(0, castagnoli, n[:l])
	c = crc32.Update(c, castagnoli, []byte(ns))
	c = crc32.Update(c, castagnoli, []byte(key))
	c = crc32.Update(c, castagnoli, b[:10])
	return crc32.Update(c, castagnoli, b[frameLen:])
}
