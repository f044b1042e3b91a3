package metrics

import (
	"testing"
)

const meminfo = "MemTotal:       24683620 kB\nMemFree:        22809652 kB\n"

func TestMemoryLimit(t *testing.T) {
	const total = 24683620 * 1024
	tests := []struct {
		name   string
		files  map[string]string
		want   uint64
		wantOK bool
	}{
		{"cgroup v2 limit", map[string]string{cgroupV2MemoryMax: "1073741824\n", procMeminfo: meminfo}, 1 << 30, true},
		{"cgroup v2 max", map[string]string{cgroupV2MemoryMax: "max\n", procMeminfo: meminfo}, total, true},
		{"cgroup v1 limit", map[string]string{cgroupV1MemoryMax: "536870912\n", procMeminfo: meminfo}, 512 << 20, true},
		{"cgroup v1 unlimited", map[string]string{cgroupV1MemoryMax: "9223372036854771712\n", procMeminfo: meminfo}, total, true},
		{"limit above the machine", map[string]string{cgroupV2MemoryMax: "99999999999999\n", procMeminfo: meminfo}, total, true},
		{"no meminfo, a limit", map[string]string{cgroupV2MemoryMax: "1073741824"}, 1 << 30, true},
		{"meminfo only", map[string]string{procMeminfo: meminfo}, total, true},
		{"nothing", map[string]string{}, 0, false},
		{"garbage", map[string]string{cgroupV2MemoryMax: "lots", procMeminfo: "MemTotal: many kB"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(path string) []byte {
				if s, ok := tt.files[path]; ok {
					return []byte(s)
				}
				return nil
			}
			got, ok := memoryLimit(read)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("memoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzMemoryFiles feeds arbitrary file contents to the parsers: they must not
// panic, and what they accept must be positive.
func FuzzMemoryFiles(f *testing.F) {
	f.Add([]byte(meminfo))
	f.Add([]byte("max\n"))
	f.Add([]byte("MemTotal: 18446744073709551615 kB\n"))
	f.Add([]byte("MemTotal:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := parseMeminfoTotal(b); ok && n == 0 {
			t.Errorf("parseMeminfoTotal(%q) = 0, true", b)
		}
		if n, ok := parseCgroupLimit(b); ok && n == 0 {
			t.Errorf("parseCgroupLimit(%q) = 0, true", b)
		}
	})
}
