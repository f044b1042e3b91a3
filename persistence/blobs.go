package persistence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// uploadBuffer is the size of the reads and writes that stream an upload to
// disk: large enough to keep system calls few, small enough for many at once.
const uploadBuffer = 256 << 10

// Upload is a file being received into the store's temporary area. It is
// either committed as a job's blob or removed; nothing else is left behind.
type Upload struct {
	s    *Store
	f    *os.File
	size int64
	sum  hash.Hash
	done bool
}

// NewUpload opens a new temporary file for an incoming PDF.
func (s *Store) NewUpload() (*Upload, error) {
	f, err := os.CreateTemp(s.tmp, "upload-*.pdf")
	if err != nil {
		return nil, noSpace(fmt.Errorf("persistence: create upload: %w", err))
	}
	return &Upload{s: s, f: f, sum: sha256.New()}, nil
}

// Receive streams r to disk, failing with ErrUploadTooLarge as soon as more
// than limit bytes arrive (limit <= 0: no limit), and with
// ErrInsufficientStorage when the disk fills. Memory use is one buffer.
func (u *Upload) Receive(r io.Reader, limit int64) (int64, error) {
	if limit > 0 {
		r = io.LimitReader(r, limit-u.size+1)
	}
	buf := make([]byte, uploadBuffer)
	n, err := io.CopyBuffer(io.MultiWriter(u.f, u.sum), r, buf)
	u.size += n
	if err != nil {
		return n, noSpace(fmt.Errorf("persistence: receive upload: %w", err))
	}
	if limit > 0 && u.size > limit {
		return n, ErrUploadTooLarge
	}
	return n, nil
}

// Path is where the upload is on disk.
func (u *Upload) Path() string { return u.f.Name() }

// Size is how many bytes were received.
func (u *Upload) Size() int64 { return u.size }

// SHA256 is the hex digest of the bytes received.
func (u *Upload) SHA256() string { return hex.EncodeToString(u.sum.Sum(nil)) }

// Commit makes the upload the PDF of job: synced, then renamed into the blobs folder.
func (u *Upload) Commit(job string) (string, error) {
	if err := u.f.Sync(); err != nil {
		u.Abort()
		return "", noSpace(fmt.Errorf("persistence: sync upload: %w", err))
	}
	if err := u.f.Close(); err != nil {
		u.Abort()
		return "", noSpace(fmt.Errorf("persistence: close upload: %w", err))
	}
	dst := u.s.BlobPath(job)
	if err := os.Rename(u.f.Name(), dst); err != nil {
		u.Abort()
		return "", fmt.Errorf("persistence: store upload: %w", err)
	}
	u.done = true
	if d, err := os.Open(u.s.blobs); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return dst, nil
}

// Abort removes the upload. It is safe to call after Commit (it does nothing then).
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	_ = u.f.Close()
	if err := os.Remove(u.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		u.s.log.Error("remove upload", "path", u.f.Name(), "err", err)
	}
}

// BlobPath is where a job's PDF is kept while the job runs.
func (s *Store) BlobPath(job string) string {
	return filepath.Join(s.blobs, job+".pdf")
}

// RemoveBlob deletes a job's PDF (after the job ended).
func (s *Store) RemoveBlob(job string) error {
	err := os.Remove(s.BlobPath(job))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("persistence: remove blob of %s: %w", job, err)
	}
	return nil
}

// Blobs lists the job ids that have a PDF in the blobs folder.
func (s *Store) Blobs() ([]string, error) {
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		return nil, fmt.Errorf("persistence: list blobs: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".pdf"); ok && name != "" {
			ids = append(ids, name)
		}
	}
	return ids, nil
}

// TmpFiles lists what is in the temporary upload area (for tests and checks).
func (s *Store) TmpFiles() ([]string, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("persistence: list tmp: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

func (s *Store) cleanTmp() error {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("persistence: list tmp: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(s.tmp, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("persistence: clean tmp: %w", err)
		}
		s.log.Info("removed unfinished upload", "path", p)
	}
	return nil
}

// cachePath is where a PDF fetched from another node is kept while this
// node works on the job's chunks.
func (s *Store) cachePath(job string) string {
	return filepath.Join(s.cache, job+".pdf")
}

// CachedBlob returns the local copy of another node's job PDF, calling fill
// to fetch it the first time. The copy is checked against wantSHA256 (hex)
// before use; concurrent callers for one job share one fetch.
func (s *Store) CachedBlob(ctx context.Context, job, wantSHA256 string, fill func(ctx context.Context, w io.Writer) error) (string, error) {
	dst := s.cachePath(job)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	_, err, _ := s.fetches.Do(job, func() (any, error) {
		if _, err := os.Stat(dst); err == nil {
			return nil, nil
		}
		up, err := s.NewUpload()
		if err != nil {
			return nil, err
		}
		defer up.Abort()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(fill(ctx, pw)) }()
		if _, err := up.Receive(pr, 0); err != nil {
			pr.CloseWithError(err)
			return nil, fmt.Errorf("persistence: fetch pdf of %s: %w", job, err)
		}
		if wantSHA256 != "" && up.SHA256() != wantSHA256 {
			return nil, fmt.Errorf("persistence: fetched pdf of %s does not match its checksum", job)
		}
		if err := up.f.Close(); err != nil {
			return nil, err
		}
		if err := os.Rename(up.f.Name(), dst); err != nil {
			return nil, fmt.Errorf("persistence: keep fetched pdf of %s: %w", job, err)
		}
		up.done = true
		return nil, nil
	})
	if err != nil {
		return "", err
	}
	return dst, nil
}

// RemoveCached deletes the local copy of another node's job PDF, if any.
func (s *Store) RemoveCached(job string) {
	if err := os.Remove(s.cachePath(job)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove cached pdf", "job", job, "err", err)
	}
}
