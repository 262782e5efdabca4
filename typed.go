package memo

import (
	"math"
	"reflect"
	"unsafe"
)

// numberSlots returns the offsets of the empty-interface values held directly
// in a K (K itself, struct fields and array elements, not what pointers or
// interfaces point to), whose numbers a cache that is not Typed normalizes.
// It returns nil when there are none or when typed is set.
func numberSlots[K comparable](typed bool) []uintptr {
	if typed {
		return nil
	}
	return anySlots(reflect.TypeFor[K](), 0, nil)
}

func anySlots(t reflect.Type, base uintptr, out []uintptr) []uintptr {
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() == 0 {
			out = append(out, base)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			out = anySlots(f.Type, base+f.Offset, out)
		}
	case reflect.Array:
		for i := range t.Len() {
			out = anySlots(t.Elem(), base+uintptr(i)*t.Elem().Size(), out)
		}
	}
	return out
}

// normalize rewrites every number in k's interface slots to one canonical
// type, so that numerically equal numbers make equal keys, and reports
// whether it changed anything.
func (c *Cache[K, V]) normalize(k K) (K, bool) {
	changed := false
	for _, off := range c.slots {
		p := (*any)(unsafe.Add(unsafe.Pointer(&k), off))
		if n, ok := canonicalNumber(*p); ok {
			*p, changed = n, true
		}
	}
	return k, changed
}

// canonicalNumber returns x's number in its canonical type and true, or false
// if x is no number or is already canonical. Integers, and floats and complex
// numbers with an integral value, become int (or int64, or uint64, for values
// int cannot hold); other floats become float64 and other complex numbers
// complex128. Conversions are exact, so 2^53+1 never meets float64(2^53).
func canonicalNumber(x any) (any, bool) {
	switch v := x.(type) {
	case nil, int, string, bool:
		return nil, false // the common cases, first
	case float64:
		return canonicalFloat(v, false)
	case int8:
		return int(v), true
	case int16:
		return int(v), true
	case int32:
		return int(v), true
	case int64:
		return canonicalInt(v)
	case uint8:
		return int(v), true
	case uint16:
		return int(v), true
	case uint32:
		return canonicalUint(uint64(v))
	case uint:
		return canonicalUint(uint64(v))
	case uint64:
		if v > math.MaxInt64 {
			return nil, false
		}
		return canonicalUint(v)
	case uintptr:
		return canonicalUint(uint64(v))
	case float32:
		return canonicalFloat(float64(v), true)
	case complex128:
		return canonicalComplex(v, false)
	case complex64:
		return canonicalComplex(complex128(v), true)
	}
	// Named number types, such as type Celsius float64.
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, _ := canonicalInt(rv.Int())
		return n, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, _ := canonicalUint(rv.Uint())
		return n, true
	case reflect.Float32, reflect.Float64:
		n, _ := canonicalFloat(rv.Float(), true)
		return n, true
	case reflect.Complex64, reflect.Complex128:
		n, _ := canonicalComplex(rv.Complex(), true)
		return n, true
	}
	return nil, false
}

// canonicalInt returns i as an int if an int holds it; true means the type
// changed.
func canonicalInt(i int64) (any, bool) {
	if int64(int(i)) == i {
		return int(i), true
	}
	return i, false
}

func canonicalUint(u uint64) (any, bool) {
	if u <= math.MaxInt64 {
		n, _ := canonicalInt(int64(u))
		return n, true
	}
	return u, true
}

// canonicalFloat: retyped says f did not come as a float64, so a non-integral
// f must still be boxed anew.
func canonicalFloat(f float64, retyped bool) (any, bool) {
	switch {
	case f != math.Trunc(f) || math.IsInf(f, 0): // NaN included
		if retyped {
			return f, true
		}
		return nil, false
	case f >= -(1<<63) && f < 1<<63:
		n, _ := canonicalInt(int64(f))
		return n, true
	case f >= 0 && f < 1<<64:
		return uint64(f), true
	}
	if retyped {
		return f, true
	}
	return nil, false
}

func canonicalComplex(z complex128, retyped bool) (any, bool) {
	if imag(z) == 0 {
		return canonicalFloat(real(z), true)
	}
	if retyped {
		return z, true
	}
	return nil, false
}
