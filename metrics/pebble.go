package metrics

// PebbleStats is what RegisterPebble's callback reports about the store. The
// fields take Pebble's own types: from a *pebble.Metrics m, DiskBytes is
// m.DiskSpaceUsage(), MemtableBytes is m.MemTable.Size, Compactions is
// m.Compact.Count and ReadAmp is m.ReadAmp().
type PebbleStats struct {
	DiskBytes     uint64 // quire_pebble_disk_usage_bytes
	MemtableBytes uint64 // quire_pebble_memtable_bytes
	Compactions   int64  // quire_pebble_compactions_total (since the store opened)
	ReadAmp       int    // quire_pebble_read_amplification
}

var (
	pebbleDisk        = set.NewGauge("quire_pebble_disk_usage_bytes", nil)
	pebbleMemtable    = set.NewGauge("quire_pebble_memtable_bytes", nil)
	pebbleCompactions = set.NewCounter("quire_pebble_compactions_total")
	pebbleReadAmp     = set.NewGauge("quire_pebble_read_amplification", nil)
	pebble            hook[PebbleStats]
)

// RegisterPebble sets the callback behind the quire_pebble_* metrics, e.g. a
// func that reads persistence.Store.Metrics. Each scrape calls f once. The
// returned func removes f.
func RegisterPebble(f func() PebbleStats) (unregister func()) {
	return pebble.register(f)
}

func refreshPebble() {
	s := pebble.get()
	pebbleDisk.Set(float64(s.DiskBytes))
	pebbleMemtable.Set(float64(s.MemtableBytes))
	pebbleCompactions.Set(uint64(max(s.Compactions, 0)))
	pebbleReadAmp.Set(float64(s.ReadAmp))
}
