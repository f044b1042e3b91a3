package node

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/quirehq/quire/cluster/pki"
)

// Identity on the actor port is per connection: the TLS handshake requires a
// client certificate of the cluster CA, and the interceptors below take the
// node name from it, refuse a call without one and log who connected. The
// messages on an accepted stream are not checked one by one against that
// name (protoactor's envelopes carry the sender's PID, which a member could
// set to anything): a member is trusted as a whole, a non-member gets in
// nowhere.

// Log keys.
const logKeyPeerNode = "peer_node"

// remoteServerSecurity is the gRPC server options of a secure actor port:
// mutual TLS and the identity interceptors.
func remoteServerSecurity(creds *pki.TLS, log *slog.Logger) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(creds.Server())),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			name, err := remotePeerName(ss.Context())
			if err != nil {
				log.Warn("actor connection refused", "method", info.FullMethod, "err", err)
				return err
			}
			log.Info("member connected to the actor port", logKeyPeerNode, name, "method", info.FullMethod)
			return handler(srv, ss)
		}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if _, err := remotePeerName(ctx); err != nil {
				log.Warn("actor call refused", "method", info.FullMethod, "err", err)
				return nil, err
			}
			return handler(ctx, req)
		}),
	}
}

// remotePeerName is the node name of the verified client certificate of a
// gRPC call, or an Unauthenticated status.
func remotePeerName(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "not a TLS connection")
	}
	name, err := pki.PeerName(info.State)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return name, nil
}

// sourceURL is where workers fetch this node's job PDFs: its peer port.
func sourceURL(cfg Config) string {
	if cfg.Peer == nil || cfg.PeerAddr == "" {
		return ""
	}
	return cfg.Peer.URL(cfg.PeerAddr, InternalPDFPath)
}
