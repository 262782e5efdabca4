package memo

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
)

// Saving a cache's entries to a writer and loading them into a new cache:
// warm restarts. A snapshot is the magic snapMagic, then chunks, each a tag
// byte and a length-prefixed frame (codec.go's frame, in the namespace
// snapNS): the header (tagHeader), one chunk per entry (tagEntry), coldest
// first, and the end (tagEnd). An entry's chunk also carries its key's
// encoding and its expiry before the frame; the frame's key covers them, the
// snapshot's nonce and the entry's place, so that no entry can be changed,
// dropped, moved or taken from another snapshot unseen, and the end's frame
// carries the number of entries, so that a cut at a chunk's end is seen too.

const (
	snapMagic  = "memo\x00snapshot\n"
	snapNS     = "memo snapshot"
	tagHeader  = 'h'
	tagEntry   = 'e'
	tagEnd     = '.'
	nonceLen   = 16
	maxHeader  = 1 << 16 // the longest header Load reads
	expiryLen  = 8
	lengthsLen = 2 * binary.MaxVarintLen64
)

// snapshotter is how a cache writes and reads snapshots: its shared tier's
// Codec, MaxValue, secrets and namespace, or gob, the default MaxValue and
// none.
type snapshotter struct {
	codec   Codec
	max     int
	secret  []byte
	secrets [][]byte
	ns      string
	kfp     uint64
	vfp     uint64
}

// snapshotter returns c's snapshotter, or an error naming what of K or V its
// codec cannot carry.
func (c *Cache[K, V]) snapshotter(op string) (snapshotter, error) {
	kt, vt := reflect.TypeFor[K](), reflect.TypeFor[V]()
	sn := snapshotter{codec: gobCodec{}, max: defaultMaxValue, kfp: fingerprint(kt), vfp: fingerprint(vt)}
	if t := c.tier; t != nil {
		sn.codec, sn.max, sn.secret, sn.secrets, sn.ns = t.Codec, t.MaxValue, t.Secret, t.secrets, t.ns
	}
	if why := localOnly(kt, reflect.Value{}); why != "" {
		return sn, fmt.Errorf("memo: %s: keys of type %v cannot be saved: %s", op, kt, why)
	}
	if _, gob := sn.codec.(gobCodec); gob {
		if why := gobRefuses(kt, nil); why != "" {
			return sn, fmt.Errorf("memo: %s: the default codec (gob) cannot carry keys of type %v exactly: %s; share the cache with a Codec that can", op, kt, why)
		}
		if why := gobRefuses(vt, nil); why != "" {
			return sn, fmt.Errorf("memo: %s: the default codec (gob) cannot carry values of type %v exactly: %s; share the cache with a Codec that can", op, vt, why)
		}
	}
	return sn, nil
}

// header returns the body of a snapshot's header: KeyVersion, the
// fingerprints of K and V, the nonce, then the names of K and V and the
// namespace, each after its length.
func (sn snapshotter) header(kt, vt reflect.Type, nonce []byte) []byte {
	b := []byte{KeyVersion}
	b = binary.BigEndian.AppendUint64(b, sn.kfp)
	b = binary.BigEndian.AppendUint64(b, sn.vfp)
	b = append(b, nonce...)
	for _, s := range []string{kt.String(), vt.String(), sn.ns} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// entryKey returns what the frame of a snapshot's entry number n is keyed
// by: the snapshot's nonce, n, the entry's expiry and its key's encoding.
func entryKey(nonce []byte, n uint64, exp []byte, key []byte) string {
	b := make([]byte, 0, len(nonce)+binary.MaxVarintLen64+len(exp)+len(key))
	b = append(b, nonce...)
	b = binary.AppendUvarint(b, n)
	b = append(b, exp...)
	return string(append(b, key...))
}

// Save writes the cache's entries holding fresh values to w, as a snapshot
// that Load reads back into a cache of the same key and value types, in
// this process or a later one: to restart warm. It writes them coldest
// first (the reverse of Hottest), so that Load, storing them in that order,
// leaves the hottest the most recent; each with the instant it expires (on
// the wall clock), so that the time a value has left carries over a
// restart. Stale values, cached errors and executions in progress are not
// saved; saving is not a use of any entry, and counts nothing.
//
// Keys and values are encoded as a shared cache's values are (see Sharing):
// by the Sharing's Codec if the cache is shared, else by gob, for which Save
// refuses key or value types gob cannot carry exactly, naming them; keys
// that hold pointers (compared by address) are refused with any codec. An
// entry whose key or value does not come back equal from the codec, or
// whose value is longer than MaxValue (16 MiB without Sharing), fails Save
// with an error naming it. Each entry is framed as a shared value is: with
// the fingerprint of the value type and a checksum, or, given
// Sharing.Secret, an HMAC that Load checks.
//
// The entries are copied first, each shard's under its lock, as Hottest
// does; the encoding and the writing run with no lock held, so calls go on
// meanwhile, and what they change after the copy is not saved. On an error,
// what was written to w is not a snapshot Load accepts.
func (c *Cache[K, V]) Save(w io.Writer) error {
	sn, err := c.snapshotter("Save")
	if err != nil {
		return err
	}
	now, wall := c.instant()
	es, ats := c.held(now, true)
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	bw := bufio.NewWriter(w)
	bw.WriteString(snapMagic)
	chunk := func(tag byte, pre []byte, f []byte) {
		bw.WriteByte(tag)
		bw.Write(pre)
		var n [binary.MaxVarintLen64]byte
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		bw.Write(f)
	}
	chunk(tagHeader, nil, frame(snapNS, "", 0, 0, sn.secret, sn.header(reflect.TypeFor[K](), reflect.TypeFor[V](), nonce)))
	for n, e := range es {
		var exp int64 // Unix nanoseconds; 0 for never
		if ats != nil && ats[n] != math.MaxInt64 {
			exp = addSat(wall, ats[n]-now)
		}
		kb, err := encodeValue(sn.codec, e.key)
		if err != nil {
			return fmt.Errorf("memo: Save: the key %v: %w", e.key, err)
		}
		vb, err := encodeValue(sn.codec, e.val)
		if err != nil {
			return fmt.Errorf("memo: Save: the value of key %v: %w", e.key, err)
		}
		if len(kb) > sn.max || len(vb) > sn.max {
			return fmt.Errorf("memo: Save: the entry of key %v encodes to %d and %d bytes, more than MaxValue (%d)", e.key, len(kb), len(vb), sn.max)
		}
		pre := binary.AppendUvarint(nil, uint64(len(kb)))
		pre = append(pre, kb...)
		pre = binary.BigEndian.AppendUint64(pre, uint64(exp))
		ek := entryKey(nonce, uint64(n), pre[len(pre)-expiryLen:], kb)
		chunk(tagEntry, pre, frame(snapNS, ek, sn.vfp, exp, sn.secret, vb))
	}
	chunk(tagEnd, nil, frame(snapNS, string(nonce), 0, 0, sn.secret, binary.AppendUvarint(nil, uint64(len(es)))))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("memo: Save: writing the snapshot: %w", err)
	}
	return nil
}

// instant reads the clock: now as calls read it (see Cache.now), and the
// wall clock in Unix nanoseconds.
func (c *Cache[K, V]) instant() (now, wall int64) {
	if c.timed {
		return c.stamp()
	}
	return 0, c.clock().UnixNano()
}

// saved is an entry read from a snapshot, not yet decoded.
type saved struct {
	key, val []byte
	exp      int64
}

// errTruncated is Load's error for a snapshot that ends early.
var errTruncated = errors.New("memo: Load: the snapshot is truncated")

// Load reads a snapshot that Save wrote and stores its entries in the
// cache, hottest last, and returns how many it stored. It stores nothing
// unless the whole snapshot checks: written for the same key type, value
// type (by name and by fingerprint, as a shared cache checks values),
// KeyVersion and, for a shared cache, Sharing namespace (Name and Version);
// authenticated by the cache's Sharing.Secret or OldSecret if it has one
// (and refused if sealed while the cache has none); whole, unaltered and
// decodable. Otherwise it returns an error naming what differs or what is
// wrong, starting "memo: Load:". It reads r up to the snapshot's end, and
// may read beyond it.
//
// Each entry is stored as Put would store it, with the size bound, MaxWeight
// and ExpireAfter applied, to expire at the earlier of its saved expiry and
// the expiry the cache gives a value stored now; an entry already expired is
// skipped, and in a cache without expiry an entry does not expire. A cache
// bounded to fewer entries than the snapshot holds keeps the hottest: Load
// reads the others without keeping them. Load never replaces what a call
// could be answered with: a key that has a fresh value, a cached error or an
// execution in progress keeps it, the snapshot's entry is skipped. Loading
// counts no hit and no miss in CacheInfo (evictions to make room are
// counted; EstimateSizes takes each entry stored as it takes a Put, as a
// miss), notes no event but evictions and expirations, and, in a shared
// cache, writes nothing to the store. Entries are read with MaxValue (16 MiB
// without Sharing) as the bound of each key and value, checked before either
// is read.
func (c *Cache[K, V]) Load(r io.Reader) (int, error) {
	sn, err := c.snapshotter("Load")
	if err != nil {
		return 0, err
	}
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapMagic))
	if n, err := io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		if err != nil && n == 0 {
			return 0, fmt.Errorf("memo: Load: the snapshot is empty: %w", err)
		}
		return 0, fmt.Errorf("memo: Load: not a memo snapshot: it starts with %q", magic[:n])
	}
	hb, err := sn.chunk(br, tagHeader, maxHeader, nil)
	if err != nil {
		return 0, err
	}
	nonce, err := sn.checkHeader(hb, reflect.TypeFor[K](), reflect.TypeFor[V]())
	if err != nil {
		return 0, err
	}
	keep := c.params.MaxSize // 0: every entry
	var kept []saved
	for n := uint64(0); ; n++ {
		tag, err := br.ReadByte()
		if err != nil {
			return 0, errTruncated
		}
		if tag == tagEnd {
			b, err := sn.chunk(br, tagEnd, sealedLen+binary.MaxVarintLen64, func(b []byte) ([]byte, int64, error) {
				return unframe(snapNS, string(nonce), 0, b, sn.secrets...)
			})
			if err != nil {
				return 0, err
			}
			if count, l := binary.Uvarint(b); l <= 0 || l != len(b) || count != n {
				return 0, fmt.Errorf("memo: Load: the snapshot is damaged: it ends after %d entries, its end says %d", n, count)
			}
			break
		}
		if tag != tagEntry {
			return 0, fmt.Errorf("memo: Load: the snapshot is damaged: a chunk starts with %q", tag)
		}
		kb, err := readPart(br, sn.max, "key")
		if err != nil {
			return 0, err
		}
		exp := make([]byte, expiryLen)
		if _, err := io.ReadFull(br, exp); err != nil {
			return 0, errTruncated
		}
		ek := entryKey(nonce, n, exp, kb)
		vb, err := sn.chunk(br, tagEntry, sn.max+sealedLen, func(b []byte) ([]byte, int64, error) {
			return unframe(snapNS, ek, sn.vfp, b, sn.secrets...)
		})
		if err != nil {
			return 0, err
		}
		kept = append(kept, saved{kb, vb, int64(binary.BigEndian.Uint64(exp))})
		if keep > 0 && len(kept) >= 2*keep {
			kept = append(kept[:0], kept[len(kept)-keep:]...)
		}
	}
	if keep > 0 && len(kept) > keep {
		kept = kept[len(kept)-keep:]
	}
	ks, vs := make([]K, len(kept)), make([]V, len(kept))
	for i, e := range kept {
		if ks[i], err = decodeValue[K](sn.codec, e.key); err == nil {
			vs[i], err = decodeValue[V](sn.codec, e.val)
		}
		if err != nil {
			return 0, fmt.Errorf("memo: Load: an entry of the snapshot does not decode: %w", err)
		}
	}
	stored := 0
	for i, e := range kept {
		if c.adopt(ks[i], vs[i], e.exp) {
			stored++
		}
	}
	return stored, nil
}

// adopt stores v under k for Load, to expire by exp (Unix nanoseconds, 0
// for never) at the latest, and reports whether it did.
func (c *Cache[K, V]) adopt(k K, v V, exp int64) bool {
	s, k, life, w, ok := c.storable(k, v)
	if !ok {
		return false
	}
	now, wall := c.instant()
	if exp != 0 && exp <= wall {
		return false
	}
	return s.adopt(k, v, now, c.expiryAt(now, wall, exp, life), w)
}

// readPart reads a length, at most max, then that many bytes: the part of
// a snapshot's chunk named what.
func readPart(br *bufio.Reader, max int, what string) ([]byte, error) {
	l, err := binary.ReadUvarint(br)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errTruncated
	case err != nil:
		return nil, fmt.Errorf("memo: Load: the snapshot is damaged: %w", err)
	case l > uint64(max):
		return nil, fmt.Errorf("memo: Load: the snapshot is damaged or too large: a %s of %d bytes, more than %d", what, l, max)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, errTruncated
	}
	return b, nil
}

// chunk reads the frame of a chunk tagged tag (the tag itself already read,
// but for the header's), at most max bytes long, and returns its body, as
// open (unframe, by default with the header's key and fingerprint) gives it.
func (sn snapshotter) chunk(br *bufio.Reader, tag byte, max int, open func([]byte) ([]byte, int64, error)) ([]byte, error) {
	if tag == tagHeader {
		if t, err := br.ReadByte(); err != nil {
			return nil, errTruncated
		} else if t != tagHeader {
			return nil, fmt.Errorf("memo: Load: the snapshot is damaged: it does not start with its header")
		}
	}
	b, err := readPart(br, max, "frame")
	if err != nil {
		return nil, err
	}
	if open == nil {
		open = func(b []byte) ([]byte, int64, error) { return unframe(snapNS, "", 0, b, sn.secrets...) }
	}
	body, _, err := open(b)
	switch {
	case err == nil:
		return body, nil
	case errors.Is(err, ErrUnauthenticated):
		return nil, fmt.Errorf("memo: Load: the snapshot was not written with this cache's Secret, or was altered since: %w", err)
	case err == errForeign && len(b) > 1 && b[1] == sealedVersion:
		return nil, errors.New("memo: Load: the snapshot was written with a Secret, and this cache has none")
	}
	return nil, fmt.Errorf("memo: Load: the snapshot is damaged: %v", err)
}

// checkHeader checks the header's body hb against the cache's key type kt
// and value type vt, and returns the snapshot's nonce.
func (sn snapshotter) checkHeader(hb []byte, kt, vt reflect.Type) ([]byte, error) {
	damaged := errors.New("memo: Load: the snapshot's header is damaged")
	if len(hb) < 1+8+8+nonceLen {
		return nil, damaged
	}
	version, kfp, vfp := hb[0], binary.BigEndian.Uint64(hb[1:9]), binary.BigEndian.Uint64(hb[9:17])
	nonce, rest := hb[17:17+nonceLen], hb[17+nonceLen:]
	var names [3]string
	for i := range names {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return nil, damaged
		}
		names[i], rest = string(rest[n:n+int(l)]), rest[n+int(l):]
	}
	differs := func(what, saved string, want reflect.Type) error {
		if saved == want.String() {
			return fmt.Errorf("memo: Load: the snapshot holds %s of a type named %s whose structure (fingerprint) differs from this cache's", what, saved)
		}
		return fmt.Errorf("memo: Load: the snapshot holds %s of type %s, this cache's are %v", what, saved, want)
	}
	switch {
	case len(rest) != 0:
		return nil, damaged
	case version != KeyVersion:
		return nil, fmt.Errorf("memo: Load: the snapshot was written under KeyVersion %d, this memo's is %d", version, KeyVersion)
	case kfp != sn.kfp || names[0] != kt.String():
		return nil, differs("keys", names[0], kt)
	case vfp != sn.vfp || names[1] != vt.String():
		return nil, differs("values", names[1], vt)
	case names[2] != sn.ns:
		return nil, fmt.Errorf("memo: Load: the snapshot was written by a cache shared as %q, this one's namespace is %q", names[2], sn.ns)
	}
	return nonce, nil
}
