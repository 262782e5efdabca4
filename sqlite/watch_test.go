package sqlite

import (
	"testing"
	"time"

	"github.com/gomemo/memo/internal/await"
	"github.com/gomemo/memo/internal/holdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInvalidationNotifiedAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	holdtest.Invalidation(t, open(t, dir, Options{}), other("watch", dir))
}

func TestNotifyOnlyForDeletionsOfTheNamespace(t *testing.T) {
	dir := t.TempDir()
	watcher := open(t, dir, Options{})
	writer := open(t, dir, Options{}) // another connection, as another process's
	ctx := t.Context()
	// Channels with room for many values, so that every send is counted.
	a, b := make(chan struct{}, 100), make(chan struct{}, 100)
	stopA := watcher.Notify("a", a)
	defer stopA()
	stopB := watcher.Notify("b", b)
	defer stopB()
	await.Soon(t, func() bool { return len(a) == 2 },
		"a watcher is sent a value at once, and another after the watcher's first look, for what was deleted before")
	require.NotEmpty(t, b)
	for len(a) > 0 || len(b) > 0 { // b's second value too, if b came before the first look
		select {
		case <-a:
		case <-b:
		}
	}

	require.NoError(t, writer.Set(ctx, "a", "k", []byte("v"), time.Time{}))
	time.Sleep(5 * watchEvery)
	assert.Empty(t, a, "a write is not a deletion")

	require.NoError(t, writer.Delete(ctx, "a", "k"))
	await.Soon(t, func() bool { return len(a) == 1 }, "a's watcher is told of the deletion")
	assert.Empty(t, b, "b's is not")
	<-a
	require.NoError(t, writer.Clear(ctx, "b"))
	await.Soon(t, func() bool { return len(b) == 1 }, "b's watcher is told of the Clear")
	assert.Empty(t, a)

	stopA()
	stopB()
	watcher.wmu.Lock()
	defer watcher.wmu.Unlock()
	assert.Nil(t, watcher.watchStop, "the last stop ends the watcher")
}
