// Command keys memoizes functions whose arguments Go cannot use as map keys
// (a slice, a map) by building a key from them with memo.KeyOf, and shows
// the difference the Typed option makes for keys that hold numbers.
package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gomemo/memo"
)

// query has a slice and a map: not comparable, so not a key by itself.
type query struct {
	Words  []string
	Weight map[string]int
}

func main() {
	runs := 0
	score, cache := memo.MemoizeKeyed(func(q query) (int, error) {
		runs++
		total := 0
		for _, w := range q.Words {
			total += q.Weight[w]
		}
		return total, nil
	}, func(q query) (string, error) { return memo.KeyOf(q.Words, q.Weight) })

	weights := map[string]int{"go": 3, "cache": 2, "lru": 1}
	for _, words := range [][]string{
		{"go", "cache"},
		{"go", "cache"}, // equal arguments, a new slice: a hit
		{"cache", "go"}, // another order: another key
	} {
		s, err := score(query{Words: words, Weight: weights})
		if err != nil {
			panic(err)
		}
		fmt.Printf("score(%s) = %d\n", strings.Join(words, " "), s)
	}
	fmt.Println("ran", runs, "times;", cache.CacheInfo())

	// A key the encoding refuses is an error, and nothing runs.
	_, err := memo.KeyOf(func() {})
	fmt.Println("error:", err)

	// Numbers: by default, equal numbers of different types share an entry,
	// as with Python's lru_cache; memo.Typed() keeps them apart.
	kinds := func(x any) string { return fmt.Sprintf("%T", x) }
	for _, opts := range [][]memo.Option{nil, {memo.Typed()}} {
		f, c := memo.Memoize(kinds, opts...)
		var got []string
		for _, x := range []any{1, 1.0, int64(1), uint8(1)} {
			got = append(got, f(x))
		}
		sort.Strings(got)
		fmt.Printf("typed=%v: answers %v from %d entries\n", c.Parameters().Typed, got, c.CacheInfo().CurrSize)
	}
}
