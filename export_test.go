package memo

// NewMemStore returns the tests' Store in memory, for the contract's suite,
// which runs in package memo_test.
func NewMemStore() Store { return newMemStore() }
