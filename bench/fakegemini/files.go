package fakegemini

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Files API, as genai's Files.Upload, Get and Delete use it: a
// resumable upload (a start request that returns an upload URL, then one or
// more upload requests, the last with finalize), files kept in memory and
// ACTIVE at once, and a 48-hour expiration that is reported but not
// enforced.

// fileMeta is the File resource (camelCase, sizeBytes as a string).
type fileMeta struct {
	Name           string `json:"name"`
	DisplayName    string `json:"displayName,omitempty"`
	MIMEType       string `json:"mimeType"`
	SizeBytes      string `json:"sizeBytes"`
	CreateTime     string `json:"createTime"`
	UpdateTime     string `json:"updateTime"`
	ExpirationTime string `json:"expirationTime"`
	SHA256Hash     string `json:"sha256Hash"`
	URI            string `json:"uri"`
	State          string `json:"state"`
	Source         string `json:"source"`
}

type storedFile struct {
	meta fileMeta
	data []byte
	sum  chunkKey
	seq  uint64 // creation order
}

// upload is a resumable upload session.
type upload struct {
	id       string
	fileID   string // the name asked for, without "files/", or ""
	meta     fileMeta
	declared int64 // X-Goog-Upload-Header-Content-Length, or -1
	data     []byte
}

var fileIDRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// The upload protocol's headers.
const (
	hdrUploadProtocol = "X-Goog-Upload-Protocol"
	hdrUploadCommand  = "X-Goog-Upload-Command"
	hdrUploadStatus   = "X-Goog-Upload-Status"
	hdrUploadURL      = "X-Goog-Upload-URL"
	hdrUploadOffset   = "X-Goog-Upload-Offset"
	hdrUploadSize     = "X-Goog-Upload-Size-Received"
	hdrContentType    = "X-Goog-Upload-Header-Content-Type"
	hdrContentLength  = "X-Goog-Upload-Header-Content-Length"
	chunkGranularity  = 8 << 20
)

// handleUpload serves POST /upload/v1beta/files: the start of an upload,
// or, with an upload_id, one of its upload requests.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("upload_id"); id != "" {
		s.handleUploadChunk(w, r, id)
		return
	}
	cfg := s.Config()
	if cfg.APIKey != "" && r.Header.Get("x-goog-api-key") != cfg.APIKey && r.URL.Query().Get("key") != cfg.APIKey {
		errAPIKey().write(w)
		return
	}
	if !strings.EqualFold(r.Header.Get(hdrUploadProtocol), "resumable") || !strings.EqualFold(r.Header.Get(hdrUploadCommand), "start") {
		errInvalid("The fake supports resumable uploads only: send X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start.").write(w)
		return
	}
	var body struct {
		File fileMeta `json:"file"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		errInvalid("Invalid JSON payload received. " + err.Error()).write(w)
		return
	}
	up := &upload{declared: -1}
	up.meta.DisplayName = body.File.DisplayName
	up.meta.MIMEType = body.File.MIMEType
	if up.meta.MIMEType == "" {
		up.meta.MIMEType = r.Header.Get(hdrContentType)
	}
	if up.meta.MIMEType == "" {
		errInvalidField("file.mime_type", "Missing MIME type: set file.mimeType or X-Goog-Upload-Header-Content-Type.").write(w)
		return
	}
	if v := r.Header.Get(hdrContentLength); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errInvalid("Invalid " + hdrContentLength + ": " + v).write(w)
			return
		}
		if n > cfg.MaxFileBytes {
			errInvalid(fmt.Sprintf("File size %d exceeds the limit of %d bytes.", n, cfg.MaxFileBytes)).write(w)
			return
		}
		up.declared = n
	}
	if name := body.File.Name; name != "" {
		id := strings.TrimPrefix(name, "files/")
		if !fileIDRE.MatchString(id) {
			errInvalidField("file.name", "Invalid file name "+name+": use lower-case letters, digits and dashes, at most 40.").write(w)
			return
		}
		up.fileID = id
	}

	s.mu.Lock()
	if _, dup := s.mu.files[up.fileID]; up.fileID != "" && dup {
		s.mu.Unlock()
		apiError{Code: http.StatusConflict, Message: "File files/" + up.fileID + " already exists.", Status: "ALREADY_EXISTS"}.write(w)
		return
	}
	up.id = s.newIDLocked("upload", 24)
	s.mu.uploads[up.id] = up
	s.mu.Unlock()

	u := baseURL(r) + "/upload/v1beta/files?" + url.Values{"upload_id": {up.id}, "upload_protocol": {"resumable"}}.Encode()
	w.Header().Set(hdrUploadURL, u)
	w.Header().Set(hdrUploadStatus, "active")
	w.Header().Set("X-Goog-Upload-Chunk-Granularity", strconv.Itoa(chunkGranularity))
	w.WriteHeader(http.StatusOK)
}

// handleUploadChunk serves the upload requests of session id: commands
// upload, finalize (alone or together), query and cancel. Every answer
// carries X-Goog-Upload-Status, without which genai retries.
func (s *Server) handleUploadChunk(w http.ResponseWriter, r *http.Request, id string) {
	fail := func(e apiError) {
		w.Header().Set(hdrUploadStatus, "final")
		e.write(w)
	}
	cmds := map[string]bool{}
	for c := range strings.SplitSeq(strings.ToLower(r.Header.Get(hdrUploadCommand)), ",") {
		cmds[strings.TrimSpace(c)] = true
	}
	cfg := s.Config()

	s.mu.Lock()
	up := s.mu.uploads[id]
	s.mu.Unlock()
	if up == nil {
		fail(errNotFound("Upload " + id))
		return
	}
	if cmds["cancel"] {
		s.mu.Lock()
		delete(s.mu.uploads, id)
		s.mu.Unlock()
		w.Header().Set(hdrUploadStatus, "cancelled")
		w.WriteHeader(http.StatusOK)
		return
	}
	received := func() int64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return int64(len(up.data))
	}
	if cmds["query"] {
		w.Header().Set(hdrUploadStatus, "active")
		w.Header().Set(hdrUploadSize, strconv.FormatInt(received(), 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	if !cmds["upload"] && !cmds["finalize"] {
		fail(errInvalid("Unknown " + hdrUploadCommand + ": " + r.Header.Get(hdrUploadCommand)))
		return
	}
	if cmds["upload"] {
		// One session is fed by one client in order; the lock is not held
		// while reading, and an out-of-order chunk fails the offset check.
		have := received()
		off, err := strconv.ParseInt(r.Header.Get(hdrUploadOffset), 10, 64)
		if err != nil || off != have {
			fail(errInvalid(fmt.Sprintf("Invalid %s %q: %d bytes received so far.", hdrUploadOffset, r.Header.Get(hdrUploadOffset), have)))
			return
		}
		room := cfg.MaxFileBytes - have
		chunk, err := io.ReadAll(http.MaxBytesReader(w, r.Body, room))
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			fail(errInvalid(fmt.Sprintf("File exceeds the limit of %d bytes.", cfg.MaxFileBytes)))
			return
		}
		if err != nil {
			fail(errInvalid("Reading the upload: " + err.Error()))
			return
		}
		s.mu.Lock()
		if int64(len(up.data)) != have {
			s.mu.Unlock()
			fail(errInvalid("Concurrent upload requests for one session."))
			return
		}
		up.data = append(up.data, chunk...)
		s.mu.Unlock()
	}
	if !cmds["finalize"] {
		w.Header().Set(hdrUploadStatus, "active")
		w.WriteHeader(http.StatusOK)
		return
	}
	if n := received(); up.declared >= 0 && up.declared != n {
		fail(errInvalid(fmt.Sprintf("Received %d bytes, but %s said %d.", n, hdrContentLength, up.declared)))
		return
	}

	now := cfg.Now().UTC()
	s.mu.Lock()
	if s.mu.uploads[id] != up {
		s.mu.Unlock()
		fail(errNotFound("Upload " + id))
		return
	}
	// Claim the session, so that no other request appends to its data.
	delete(s.mu.uploads, id)
	s.mu.Unlock()
	sum := sha256.Sum256(up.data)

	s.mu.Lock()
	fileID := up.fileID
	if fileID == "" {
		fileID = s.newIDLocked("file", 12)
	}
	if _, dup := s.mu.files[fileID]; dup {
		s.mu.Unlock()
		fail(apiError{Code: http.StatusConflict, Message: "File files/" + fileID + " already exists.", Status: "ALREADY_EXISTS"})
		return
	}
	meta := up.meta
	meta.Name = "files/" + fileID
	meta.SizeBytes = strconv.Itoa(len(up.data))
	meta.CreateTime = now.Format(time.RFC3339Nano)
	meta.UpdateTime = meta.CreateTime
	meta.ExpirationTime = now.Add(48 * time.Hour).Format(time.RFC3339Nano)
	meta.SHA256Hash = base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
	meta.URI = baseURL(r) + "/v1beta/files/" + fileID
	meta.State = "ACTIVE"
	meta.Source = "UPLOADED"
	s.mu.nextID++
	s.mu.files[fileID] = &storedFile{meta: meta, data: up.data, sum: sum, seq: s.mu.nextID}
	s.mu.stats.filesUploaded++
	s.mu.Unlock()

	w.Header().Set(hdrUploadStatus, "final")
	writeJSON(w, http.StatusOK, map[string]any{"file": meta})
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	f := s.mu.files[id]
	s.mu.Unlock()
	if f == nil {
		errNoFile(id).write(w)
		return
	}
	writeJSON(w, http.StatusOK, f.meta)
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	f := s.mu.files[id]
	if f != nil {
		delete(s.mu.files, id)
		s.mu.stats.filesDeleted++
	}
	s.mu.Unlock()
	if f == nil {
		errNoFile(id).write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// handleListFiles lists every file, newest first, on one page.
func (s *Server) handleListFiles(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	fs := make([]*storedFile, 0, len(s.mu.files))
	for _, f := range s.mu.files {
		fs = append(fs, f)
	}
	s.mu.Unlock()
	slices.SortFunc(fs, func(a, b *storedFile) int { return int(b.seq) - int(a.seq) })
	metas := make([]fileMeta, len(fs))
	for i, f := range fs {
		metas[i] = f.meta
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": metas})
}

// lookupFile finds an uploaded file by URI ("http://host/v1beta/files/x"),
// name ("files/x") or ID.
func (s *Server) lookupFile(uri string) *storedFile {
	id := uri
	if i := strings.LastIndex(uri, "files/"); i >= 0 {
		id = uri[i+len("files/"):]
	}
	id, _, _ = strings.Cut(id, "?")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.files[id]
}

// newIDLocked returns a new lower-case hexadecimal ID of n digits,
// reproducible from the seed.
func (s *Server) newIDLocked(kind string, n int) string {
	s.mu.nextID++
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], s.mu.cfg.Seed)
	binary.LittleEndian.PutUint64(buf[8:], s.mu.nextID)
	sum := sha256.Sum256(append(buf[:], kind...))
	return hex.EncodeToString(sum[:])[:n]
}

// baseURL is the scheme and host the client reached the fake at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
