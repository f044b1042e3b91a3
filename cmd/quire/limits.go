package main

import (
	"fmt"
	"log/slog"
)

// HTTP server limits of quire serve: timeouts, the pace of uploads, uploads
// per account, the connection bound, the open-file limit and the admin
// token's length (README, "HTTP server limits").

const (
	// minAdminToken is the shortest admin token serve accepts.
	minAdminToken = 32
	// defaultMaxConnections is --max-connections when not given, unless
	// the open-file limit asks for fewer.
	defaultMaxConnections = 4096
)

// validateHTTPLimits says which limit flag is wrong.
func (f *serveFlags) validateHTTPLimits() error {
	if f.readHeaderTimeout <= 0 || f.idleTimeout <= 0 || f.uploadGrace < 0 {
		return fmt.Errorf("--read-header-timeout and --idle-timeout must be positive and --upload-grace not negative (got %s, %s, %s)",
			f.readHeaderTimeout, f.idleTimeout, f.uploadGrace)
	}
	if f.minUploadRateKbps < 0 || f.maxUploadsPerAccount < 0 || f.maxConnections < 0 || f.maxLoginFailures < 0 {
		return fmt.Errorf("--min-upload-rate-kbps, --max-uploads-per-account, --max-connections and --max-login-failures must not be negative (got %d, %d, %d, %d)",
			f.minUploadRateKbps, f.maxUploadsPerAccount, f.maxConnections, f.maxLoginFailures)
	}
	return nil
}

// warnHTTPLimits logs the limits that are allowed but defeat their purpose.
func (f *serveFlags) warnHTTPLimits(log *slog.Logger) {
	if f.maxUploadsPerAccount > 0 && f.maxConcurrentUploads > 0 && f.maxUploadsPerAccount >= f.maxConcurrentUploads {
		log.Warn("--max-uploads-per-account is not below --max-concurrent-uploads: one account can take every upload slot",
			"max_uploads_per_account", f.maxUploadsPerAccount, "max_concurrent_uploads", f.maxConcurrentUploads)
	}
}

// checkAdminToken refuses an admin token shorter than minAdminToken; from
// names where it came from.
func checkAdminToken(token, from string) error {
	if n := len(token); n < minAdminToken {
		return fmt.Errorf("%s is %d characters long; the admin token must have at least %d "+
			"(make one with: openssl rand -base64 32; or set none and serve generates one)", from, n, minAdminToken)
	}
	return nil
}

// maxConnections is the connection bound: the flag's, or the default, and
// never more than 3/4 of the open-file limit (nofile; 0: unknown), so that
// the store, uploads and peers keep descriptors of their own.
func maxConnections(flag int, nofile uint64, log *slog.Logger) int {
	n := flag
	if n == 0 {
		n = defaultMaxConnections
	}
	if nofile > 0 {
		if room := int(min(nofile/4*3, 1<<30)); n > room {
			if flag != 0 {
				log.Warn("--max-connections is above 3/4 of the open-file limit; lowered", "max_connections", flag, "open_files", nofile, "lowered_to", room)
			}
			n = max(1, room)
		}
	}
	log.Info("http connections bounded", "max_connections", n)
	return n
}
