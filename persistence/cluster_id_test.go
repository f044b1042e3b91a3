package persistence

import (
	"errors"
	"testing"
)

// TestClusterID: a store has no cluster id until one is set; the id survives
// a reopen; setting it again is a no-op, and another id is refused.
func TestClusterID(t *testing.T) {
	dir := t.TempDir()
	s := openStoreIn(t, dir)
	if id, err := s.ClusterID(); err != nil || id != "" {
		t.Fatalf("new store: ClusterID() = %q, %v; want \"\", nil", id, err)
	}
	if err := s.SetClusterID("c1"); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = openStoreIn(t, dir)
	if id, err := s.ClusterID(); err != nil || id != "c1" {
		t.Fatalf("after reopen: ClusterID() = %q, %v; want c1", id, err)
	}
	if err := s.SetClusterID("c1"); err != nil {
		t.Errorf("setting the same id again: %v", err)
	}
	if err := s.SetClusterID("c2"); !errors.Is(err, ErrClusterIDSet) {
		t.Errorf("setting another id: %v, want ErrClusterIDSet", err)
	}
	if err := s.SetClusterID(""); err == nil {
		t.Error("an empty id was accepted")
	}
	if id, _ := s.ClusterID(); id != "c1" {
		t.Errorf("ClusterID() = %q after refused changes, want c1", id)
	}
}
