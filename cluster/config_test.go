package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Name: "a", BindAddr: "127.0.0.1:7946", Join: []string{"10.0.0.2:7946"}}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"all interfaces", func(c *Config) { c.BindAddr = ":7946" }, ""},
		{"free port", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, ""},
		{"lan", func(c *Config) { c.Profile = ProfileLAN }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "node name is empty"},
		{"other meta name", func(c *Config) { c.Meta.Name = "b" }, `metadata name "b" differs`},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "not host:port"},
		{"bind on a host name", func(c *Config) { c.BindAddr = "localhost:7946" }, "must be an IP address"},
		{"bad port", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "port must be a number"},
		{"advertise without IP", func(c *Config) { c.AdvertiseAddr = ":7946" }, "has no IP address"},
		{"bad seed", func(c *Config) { c.Join = []string{"10.0.0.2"} }, `seed "10.0.0.2" is not host:port`},
		{"unknown profile", func(c *Config) { c.Profile = "wan" }, `profile "wan" is unknown`},
		{"timeout after interval", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second },
			"probe timeout (2s) must be shorter"},
		{"negative load", func(c *Config) { c.Meta.Load = -1 }, "must not be negative"},
		{"name too long", func(c *Config) { c.Name = strings.Repeat("n", 500) }, "node metadata too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStartRefusesInvalidConfig(t *testing.T) {
	if _, err := Start(t.Context(), Config{BindAddr: "127.0.0.1:0"}); err == nil ||
		!strings.Contains(err.Error(), "node name is empty") {
		t.Fatalf("Start without a name = %v", err)
	}
}
