package memo

import (
	"errors"
	"fmt"
	"reflect"
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
