package store

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
)

// Download is the progress record of one fetch, so that a restarted fetch
// resumes without fetching a verified chunk again.
type Download struct {
	Root    cid.Cid // what is fetched
	Dest    string  // where the finished file or directory goes
	Partial string  // the file chunks are written into until it is complete
	Size    int64   // total bytes
	Chunks  int64   // number of chunks, the length of the Have bitfield
	Created time.Time
	Done    bool
}

func (d Download) record() downloadRecord {
	return downloadRecord{dest: d.Dest, partial: d.Partial, size: d.Size, chunks: d.Chunks,
		created: d.Created.UnixNano(), done: d.Done}
}

func (r downloadRecord) download(root cid.Cid) Download {
	return Download{Root: root, Dest: r.dest, Partial: r.partial, Size: r.size, Chunks: r.chunks,
		Created: time.Unix(0, r.created), Done: r.done}
}

// PutDownload creates or updates the progress record of d.Root. A zero
// Created is set to now (or, on an update, kept). The chunk count of an
// existing download cannot change (ErrInvalid): delete it and start again.
// Updating keeps the chunks marked so far. It blocks on one committed
// transaction; it is safe for concurrent use.
func (s *Store) PutDownload(d Download) error {
	if err := integrity.Check(d.Root); err != nil {
		return fmt.Errorf("store: put download: %w", err)
	}
	if d.Dest == "" || len(d.Dest) > maxString || len(d.Partial) > maxString ||
		d.Size < 0 || d.Chunks < 0 || d.Chunks > MaxChunks {
		return fmt.Errorf("%w: download %s: dest %q, partial %q, size %d, chunks %d",
			ErrInvalid, d.Root, d.Dest, d.Partial, d.Size, d.Chunks)
	}
	if !d.Created.IsZero() && !time.Unix(0, d.Created.UnixNano()).Equal(d.Created) {
		return fmt.Errorf("%w: download %s created %v", ErrInvalid, d.Root, d.Created)
	}
	key := d.Root.Bytes()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDownloads)
		if v := b.Get(key); v != nil {
			old, err := decodeDownload(v)
			if err != nil {
				return err
			}
			if old.chunks != d.Chunks {
				return fmt.Errorf("%w: download has %d chunks, not %d", ErrInvalid, old.chunks, d.Chunks)
			}
			if d.Created.IsZero() {
				d.Created = time.Unix(0, old.created)
			}
		}
		if d.Created.IsZero() {
			d.Created = s.opts.Now()
		}
		return b.Put(key, encodeDownload(d.record()))
	})
	if err != nil {
		return fmt.Errorf("store: put download %s: %w", d.Root, err)
	}
	return nil
}

// Download returns the progress record of root, or an error wrapping
// ErrNotFound. It is safe for concurrent use.
func (s *Store) Download(root cid.Cid) (Download, error) {
	var d Download
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getDownload(tx, root)
		d = r.download(root)
		return err
	})
	return d, err
}

func getDownload(tx *bolt.Tx, root cid.Cid) (downloadRecord, error) {
	v := tx.Bucket(bucketDownloads).Get(root.Bytes())
	if v == nil {
		return downloadRecord{}, fmt.Errorf("%w: download %s", ErrNotFound, root)
	}
	r, err := decodeDownload(v)
	if err != nil {
		return r, fmt.Errorf("download %s: %w", root, err)
	}
	return r, nil
}

// Downloads returns every progress record, sorted by root (binary order). It
// is safe for concurrent use.
func (s *Store) Downloads() ([]Download, error) {
	var out []Download
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDownloads).ForEach(func(k, v []byte) error {
			root, err := cid.Cast(k)
			if err != nil {
				return fmt.Errorf("%w: download key %x: %v", ErrCorrupt, k, err)
			}
			r, err := decodeDownload(v)
			if err != nil {
				return fmt.Errorf("download %s: %w", root, err)
			}
			out = append(out, r.download(root))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: downloads: %w", err)
	}
	return out, nil
}

// DeleteDownload removes the progress record of root and its marks, flushed
// or not. Do not call it while MarkHave runs for the same root. It blocks on
// one committed transaction (after any Flush in flight); it is safe for
// concurrent use.
func (s *Store) DeleteDownload(root cid.Cid) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	s.npending -= len(s.pending[root.KeyString()])
	delete(s.pending, root.KeyString())
	s.mu.Unlock()
	key := root.Bytes()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDownloads)
		if b.Get(key) == nil {
			return fmt.Errorf("%w: download %s", ErrNotFound, root)
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		have := tx.Bucket(bucketHave)
		keys, _ := prefixed(have, key, MaxChunks/pageBits+1)
		for _, k := range keys {
			if err := have.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete download %s: %w", root, err)
	}
	return nil
}

// MarkHave records that chunks indices of download root are verified on
// disk. The marks are buffered in memory and written by the next flush: Flush,
// Close, or MarkHave itself once Options.MaxPendingMarks marks wait or the
// oldest has waited Options.FlushInterval; so MarkHave usually returns at
// once and now and then blocks on one committed transaction.
//
// Crash contract: a crash loses the marks not yet flushed, never flushed
// ones, and never marks a chunk that MarkHave was not called for. A resumed
// fetch re-verifies the chunks of the partial file that Have does not list
// (by hashing them) instead of fetching them again.
//
// An index outside [0, Chunks) returns ErrInvalid, an unknown root
// ErrNotFound. MarkHave is safe for concurrent use.
func (s *Store) MarkHave(root cid.Cid, indices ...int64) error {
	d, err := s.Download(root)
	if err != nil {
		return fmt.Errorf("store: mark have: %w", err)
	}
	for _, i := range indices {
		if i < 0 || i >= d.Chunks {
			return fmt.Errorf("%w: chunk %d of download %s with %d chunks", ErrInvalid, i, root, d.Chunks)
		}
	}
	if len(indices) == 0 {
		return nil
	}
	now := s.opts.Now()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.npending == 0 {
		s.oldest = now
	}
	k := root.KeyString()
	s.pending[k] = append(s.pending[k], indices...)
	s.npending += len(indices)
	due := s.npending >= s.opts.MaxPendingMarks ||
		(s.opts.FlushInterval > 0 && now.Sub(s.oldest) >= s.opts.FlushInterval)
	s.mu.Unlock()
	if due {
		return s.Flush()
	}
	return nil
}

// Flush writes the buffered marks in one committed transaction. Marks of a
// download deleted meanwhile are dropped. If the write fails the marks stay
// buffered for the next flush. Flush blocks on disk I/O; it is safe for
// concurrent use (flushes run one at a time).
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.pending, s.inflight, s.npending = make(map[string][]int64), batch, 0
	s.mu.Unlock()

	err := s.update(func(tx *bolt.Tx) error {
		for _, k := range slices.Sorted(maps.Keys(batch)) {
			if err := writeMarks(tx, []byte(k), batch[k]); err != nil {
				return err
			}
		}
		return nil
	})

	s.mu.Lock()
	s.inflight = nil
	if err != nil {
		for k, idx := range batch {
			s.pending[k] = append(s.pending[k], idx...)
			s.npending += len(idx)
		}
		s.oldest = s.opts.Now()
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: flush marks: %w", err)
	}
	return nil
}

// writeMarks sets bits indices in the stored pages of download root.
func writeMarks(tx *bolt.Tx, root []byte, indices []int64) error {
	v := tx.Bucket(bucketDownloads).Get(root)
	if v == nil {
		return nil // deleted meanwhile
	}
	d, err := decodeDownload(v)
	if err != nil {
		return err
	}
	byPage := make(map[uint32][]int64)
	for _, i := range indices {
		if i >= 0 && i < d.chunks {
			p := uint32(i / pageBits)
			byPage[p] = append(byPage[p], i%pageBits)
		}
	}
	have := tx.Bucket(bucketHave)
	for _, p := range slices.Sorted(maps.Keys(byPage)) {
		key := pageKey(root, p)
		page := make([]byte, pageLen(d.chunks, p))
		if pv := have.Get(key); pv != nil {
			old, err := decodePage(pv, len(page))
			if err != nil {
				return err
			}
			copy(page, old)
		}
		for _, i := range byPage[p] {
			page[i/8] |= 0x80 >> (i % 8)
		}
		if err := have.Put(key, encodePage(page)); err != nil {
			return err
		}
	}
	return nil
}

// pageLen is the length in bytes of page p of a bitfield of n bits.
func pageLen(n int64, p uint32) int {
	total := bitfield.ByteLen(n)
	start := int64(p) * pageBytes
	return int(min(max(total-start, 0), pageBytes))
}

// Have returns which chunks of download root are marked, flushed or not, or
// an error wrapping ErrNotFound. The Bitfield is the caller's. It is safe for
// concurrent use.
func (s *Store) Have(root cid.Cid) (*bitfield.Bitfield, error) {
	// Take the buffered marks first: a mark flushed after this is then in
	// the database when it is read below.
	k := root.KeyString()
	s.mu.Lock()
	extra := slices.Concat(s.pending[k], s.inflight[k])
	s.mu.Unlock()

	var bf *bitfield.Bitfield
	err := s.view(func(tx *bolt.Tx) error {
		d, err := getDownload(tx, root)
		if err != nil {
			return err
		}
		buf := make([]byte, bitfield.ByteLen(d.chunks))
		key := root.Bytes()
		npages := (int64(len(buf)) + pageBytes - 1) / pageBytes
		c := tx.Bucket(bucketHave).Cursor()
		for pk, pv := c.Seek(key); pk != nil && bytes.HasPrefix(pk, key); pk, pv = c.Next() {
			p, err := parsePageKey(pk)
			if err != nil {
				return err
			}
			if int64(p) >= npages {
				return fmt.Errorf("%w: progress page %d of %d", ErrCorrupt, p, npages)
			}
			bits, err := decodePage(pv, pageLen(d.chunks, p))
			if err != nil {
				return err
			}
			copy(buf[int64(p)*pageBytes:], bits)
		}
		if bf, err = bitfield.FromBytes(d.chunks, buf); err != nil {
			return fmt.Errorf("%w: progress of %s: %v", ErrCorrupt, root, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: have: %w", err)
	}
	for _, i := range extra {
		if i >= 0 && i < bf.Len() {
			bf.Set(i)
		}
	}
	return bf, nil
}
