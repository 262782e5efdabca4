package memo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math"
	"reflect"
)

// Codec turns the values of a shared cache into bytes and back (see
// Sharing). Unmarshal is given a pointer to a zero value of the cache's value
// type. memo does not take a Codec at its word: before a value is written,
// its bytes are decoded again and compared with it (as reflect.DeepEqual
// does, but with types that have an Equal method, such as time.Time,
// compared by it), and a value that comes back different is not stored, and
// reported, so that no process is ever served a changed value. The zero
// value is stored without the Codec. A panic in a Codec is an error.
// encoding/json's Marshal and Unmarshal have the right shape for a Codec.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// The first byte of an encoded value: the zero value of the type (nothing
// follows), or the Codec's bytes.
const (
	bodyZero  = 'z'
	bodyCodec = 'c'
)

// encodeValue encodes v for a store: the zero value by a byte of its own
// (gob cannot encode a nil pointer, say), any other through codec, refused
// unless codec gives it back equal (see same), so that a value that would
// come back different is never stored. A panic in codec is an error.
func encodeValue[V any](codec Codec, v V) (body []byte, err error) {
	rv := reflect.ValueOf(&v).Elem()
	if rv.IsZero() {
		return []byte{bodyZero}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, fmt.Errorf("memo: encoding the value panicked: %v", r)
		}
	}()
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("memo: encoding the value: %w", err)
	}
	body = append([]byte{bodyCodec}, b...)
	back, err := decodeValue[V](codec, body)
	if err != nil {
		return nil, fmt.Errorf("memo: the value does not decode from its encoding: %w", err)
	}
	if !same(rv, reflect.ValueOf(&back).Elem(), 0) {
		return nil, fmt.Errorf("memo: the value of type %T does not survive its codec unchanged (a nil and an empty slice or map, or a pointer to a zero value, inside it?), so it is not stored", v)
	}
	return body, nil
}

// decodeValue decodes what encodeValue made. A panic in codec is an error.
func decodeValue[V any](codec Codec, body []byte) (v V, err error) {
	if len(body) == 0 {
		return v, errors.New("memo: the stored value is empty")
	}
	switch body[0] {
	case bodyZero:
		if len(body) != 1 {
			return v, errors.New("memo: the stored zero value is damaged")
		}
		return v, nil
	case bodyCodec:
	default:
		return v, fmt.Errorf("memo: the stored value starts with %q", body[0])
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memo: decoding the value panicked: %v", r)
		}
	}()
	err = codec.Unmarshal(body[1:], &v)
	return v, err
}

// maxSameDepth bounds how deep same compares; deeper values count as
// different, and are not stored.
const maxSameDepth = 1000

// same reports whether a and b, of one type, are the same value, as a caller
// would see them: reflect.DeepEqual's rules (a nil slice or map differs from
// an empty one, pointers are followed), except that a type with an
// Equal(T) bool method (time.Time) is compared by it, and a NaN equals a NaN
// with the same bits.
func same(a, b reflect.Value, depth int) bool {
	if depth > maxSameDepth {
		return false
	}
	t := a.Type()
	if m, ok := t.MethodByName("Equal"); ok && a.CanInterface() &&
		m.Type.NumIn() == 2 && m.Type.In(1) == t && m.Type.NumOut() == 1 && m.Type.Out(0).Kind() == reflect.Bool {
		return a.Method(m.Index).Call([]reflect.Value{b})[0].Bool()
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float() || math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		return x == y || (math.Float64bits(real(x)) == math.Float64bits(real(y)) && math.Float64bits(imag(x)) == math.Float64bits(imag(y)))
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if t.Kind() == reflect.Interface && a.Elem().Type() != b.Elem().Type() {
			return false
		}
		return same(a.Elem(), b.Elem(), depth+1)
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		fallthrough
	case reflect.Array:
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i), depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			w := b.MapIndex(it.Key())
			if !w.IsValid() || !same(it.Value(), w, depth+1) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !same(a.Field(i), b.Field(i), depth+1) {
				return false
			}
		}
		return true
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return a.Pointer() == b.Pointer()
	}
	return reflect.DeepEqual(valueOf(a), valueOf(b))
}

// valueOf returns v's value as an interface, for the kinds same leaves to
// reflect.DeepEqual (booleans, numbers, strings), even from an unexported
// field.
func valueOf(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.String:
		return v.String()
	}
	return nil
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
		if t.NumField() == 0 {
			return fmt.Sprintf("%v has no fields, which gob refuses", t)
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return fmt.Sprintf("%v's field %s is unexported, and gob would drop it", t, f.Name)
			}
			if why := gobRefuses(f.Type, seen); why != "" {
				return why
			}
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
// checked by its dynamic values. A type that encodes itself for keys
// (MarshalBinary, as time.Time does) is taken at its encoding, as KeyOf
// takes it.
func localOnly(t reflect.Type, v reflect.Value) string {
	if t == nil {
		t = v.Type()
	}
	if t.Implements(binaryMarshalerType) {
		return ""
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

// A stored value's frame, in one of two forms. The plain frame (without
// Sharing.Secret): a magic byte, the frame's version (1), the fingerprint of
// the value's type (8 bytes), a CRC-32C (4 bytes) of the namespace, the key,
// the bytes before it and the body, then the body the Codec wrote. The
// sealed frame (with a Secret): the magic byte, version 2, the fingerprint,
// the expiry (8 bytes, Unix nanoseconds, 0 for never), an HMAC-SHA256 (32
// bytes) keyed by the Secret of the namespace, the key, the bytes before it
// and the body, then the body.
const (
	frameMagic    = 'm'
	frameVersion  = 1
	frameLen      = 14
	sealedVersion = 2
	sealedLen     = 50
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// errForeign is unframe's error for a value framed for another type or
	// by another version of the frame: a miss, not a fault.
	errForeign = errors.New("memo: stored for another type")
)

// ErrUnauthenticated is wrapped by the error of a StoreFailed event for a
// value read from the store that the cache's Sharing.Secret (or OldSecret)
// does not authenticate: written without the secret, with another one, for
// another key or namespace, or changed since. Such a value is never decoded
// or served.
var ErrUnauthenticated = errors.New("memo: the stored value is not authenticated by the Secret")

// frame frames body, a value of the type with fingerprint fp stored under
// key in ns: sealed with secret, expiring at exp (Unix nanoseconds, 0 for
// never), or plain without one.
func frame(ns, key string, fp uint64, exp int64, secret []byte, body []byte) []byte {
	if secret != nil {
		b := make([]byte, sealedLen, sealedLen+len(body))
		b[0], b[1] = frameMagic, sealedVersion
		binary.BigEndian.PutUint64(b[2:10], fp)
		binary.BigEndian.PutUint64(b[10:18], uint64(exp))
		b = append(b, body...)
		copy(b[18:sealedLen], mac(secret, ns, key, b))
		return b
	}
	b := make([]byte, frameLen, frameLen+len(body))
	b[0], b[1] = frameMagic, frameVersion
	binary.BigEndian.PutUint64(b[2:10], fp)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[10:14], checksum(ns, key, b))
	return b
}

// unframe returns the body of b, read from key in ns for a value type with
// fingerprint fp, and the expiry a sealed frame carries (0 for never, or for
// a plain frame). Given secrets (Sharing.Secret, then OldSecret), it accepts
// only a sealed frame that one of them authenticates, and checks that before
// anything else in b; an error wrapping ErrUnauthenticated otherwise.
// Without, it accepts only a plain frame. It returns errForeign for a value
// framed for another type (or, without secrets, in another form), and an
// error for a damaged one.
func unframe(ns, key string, fp uint64, b []byte, secrets ...[]byte) (body []byte, exp int64, err error) {
	if len(secrets) > 0 {
		switch {
		case len(b) < 2 || b[0] != frameMagic || b[1] != sealedVersion:
			return nil, 0, fmt.Errorf("%w: it is not a sealed frame", ErrUnauthenticated)
		case len(b) < sealedLen:
			return nil, 0, fmt.Errorf("%w: %d bytes, shorter than a sealed frame", ErrUnauthenticated, len(b))
		}
		ok := false
		for _, s := range secrets {
			if hmac.Equal(b[18:sealedLen], mac(s, ns, key, b)) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, 0, fmt.Errorf("%w: its MAC does not match", ErrUnauthenticated)
		}
		if binary.BigEndian.Uint64(b[2:10]) != fp {
			return nil, 0, errForeign
		}
		return b[sealedLen:], int64(binary.BigEndian.Uint64(b[10:18])), nil
	}
	if len(b) < frameLen {
		return nil, 0, fmt.Errorf("memo: the stored value is damaged: %d bytes, shorter than a frame", len(b))
	}
	if b[0] != frameMagic || b[1] != frameVersion {
		return nil, 0, errForeign
	}
	if got, want := binary.BigEndian.Uint32(b[10:14]), checksum(ns, key, b); got != want {
		return nil, 0, fmt.Errorf("memo: the stored value is damaged: checksum %08x, want %08x", got, want)
	}
	if binary.BigEndian.Uint64(b[2:10]) != fp {
		return nil, 0, errForeign
	}
	return b[frameLen:], 0, nil
}

// lengths returns the varint-encoded lengths of ns and key, which begin
// what checksum and mac cover, so that no two (ns, key) pairs read alike.
func lengths(buf *[2 * binary.MaxVarintLen64]byte, ns, key string) []byte {
	l := binary.PutUvarint(buf[:], uint64(len(ns)))
	l += binary.PutUvarint(buf[l:], uint64(len(key)))
	return buf[:l]
}

// checksum returns the CRC-32C of ns, key and the plain frame b but for its
// checksum field.
func checksum(ns, key string, b []byte) uint32 {
	var n [2 * binary.MaxVarintLen64]byte
	c := crc32.Update(0, castagnoli, lengths(&n, ns, key))
	c = crc32.Update(c, castagnoli, []byte(ns))
	c = crc32.Update(c, castagnoli, []byte(key))
	c = crc32.Update(c, castagnoli, b[:10])
	return crc32.Update(c, castagnoli, b[frameLen:])
}

// mac returns the HMAC-SHA256, keyed by secret, of ns, key and the sealed
// frame b but for its MAC field.
func mac(secret []byte, ns, key string, b []byte) []byte {
	var n [2 * binary.MaxVarintLen64]byte
	h := hmac.New(sha256.New, secret)
	h.Write(lengths(&n, ns, key))
	h.Write([]byte(ns))
	h.Write([]byte(key))
	h.Write(b[:18])
	h.Write(b[sealedLen:])
	return h.Sum(nil)
}
