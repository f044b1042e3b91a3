package node

import (
	"context"
	"log/slog"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/quirehq/quire/cluster/pki"
)

// Identity on the actor port is per connection: the TLS handshake requires a
// client certificate of the cluster CA, and the interceptors below take the
// node name from it, refuse a call without one and log who connected. A
// stream's ConnectRequest names the actor-system address it speaks for: when
// gossip knows the certificate's node, that must be the node's address, or
// the stream is refused (a member's certificate does not speak for another
// member). The messages on an accepted stream are not checked one by one
// (protoactor's envelopes carry sender PIDs, which a member could set to
// anything): a member is trusted as a whole, a non-member gets in nowhere.

// Log keys.
const logKeyPeerNode = "peer_node"

// remoteServerSecurity is the gRPC server options of a secure actor port:
// mutual TLS and the identity interceptors.
func remoteServerSecurity(creds *pki.TLS, addrOf func(node string) (string, bool), log *slog.Logger) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(creds.Server())),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			name, err := remotePeerName(ss.Context())
			if err != nil {
				log.Warn("actor connection refused", "method", info.FullMethod, "err", err)
				return err
			}
			log.Info("member connected to the actor port", logKeyPeerNode, name, "method", info.FullMethod)
			return handler(srv, &senderCheckedStream{ServerStream: ss, node: name, addrOf: addrOf, log: log})
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

// senderCheckedStream refuses a ConnectRequest that speaks for another
// member's address than the certificate's node gossips.
type senderCheckedStream struct {
	grpc.ServerStream
	node   string
	addrOf func(node string) (string, bool)
	log    *slog.Logger
}

func (s *senderCheckedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(*remote.RemoteMessage)
	if !ok {
		return nil
	}
	sc := msg.GetConnectRequest().GetServerConnection()
	if sc == nil {
		return nil
	}
	if want, known := s.addrOf(s.node); known && want != sc.GetAddress() {
		s.log.Warn("actor connection refused: it speaks for another address than its node's",
			logKeyPeerNode, s.node, "claimed_addr", sc.GetAddress(), "node_addr", want)
		return status.Errorf(codes.PermissionDenied, "node %s is at %s, not %s", s.node, want, sc.GetAddress())
	}
	return nil
}

// remoteAddrOf is the actor-system address gossip gives for a member.
func (n *Node) remoteAddrOf(node string) (string, bool) {
	c := n.gossip.Load()
	if c == nil {
		return "", false
	}
	for _, m := range c.Members() {
		if m.Name == node && m.RemoteAddr != "" {
			return m.RemoteAddr, true
		}
	}
	return "", false
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
