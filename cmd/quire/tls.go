package main

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/cluster/pki"
)

// newTLSCmd is `quire tls ca` and `quire tls cert`: the cluster CA and the
// node certificates of a secure cluster (README, "A secure cluster").
func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Make the cluster CA and node certificates of a secure cluster",
	}
	var caOut string
	ca := &cobra.Command{
		Use:   "ca",
		Short: "Make a cluster CA: ca.pem and ca-key.pem (ECDSA P-256, 10 years) in --out",
		Long: `Make a cluster CA: ca.pem (give it to every node as --tls-ca-file) and
ca-key.pem (mode 0600; keep it off the nodes: only 'quire tls cert' needs it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.WriteCA(caOut, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster CA: %s (key: %s)\n", filepath.Join(caOut, pki.CAFile), filepath.Join(caOut, pki.CAKeyFile))
			return nil
		},
	}
	ca.Flags().StringVar(&caOut, "out", ".", "folder to write ca.pem and ca-key.pem in")

	var caDir, certOut, nodeName string
	var ips []net.IP
	var dns []string
	cert := &cobra.Command{
		Use:   "cert",
		Short: "Make a node certificate signed by the cluster CA: NODE.pem and NODE-key.pem in --out",
		Long: `Make a node certificate (2 years, server and client) signed by the CA in --ca.
Its common name is the node name, which must be the node's --node-name. Its
names (SANs) are the node name, localhost, 127.0.0.1 and the --ip and --dns
given; nodes check each other's certificates against the CA, not the names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodeName == "" {
				return fmt.Errorf("--node is required (the node's --node-name)")
			}
			if err := pki.WriteNodeCert(caDir, certOut, pki.NodeCert{Node: nodeName, IPs: ips, DNS: dns}, time.Now()); err != nil {
				return err
			}
			c, k := pki.NodeFiles(certOut, nodeName)
			fmt.Fprintf(cmd.OutOrStdout(), "node %s: --tls-cert-file %s --tls-key-file %s\n", nodeName, c, k)
			return nil
		},
	}
	fl := cert.Flags()
	fl.StringVar(&caDir, "ca", ".", "folder of the cluster CA (ca.pem and ca-key.pem)")
	fl.StringVar(&certOut, "out", ".", "folder to write NODE.pem and NODE-key.pem in")
	fl.StringVar(&nodeName, "node", "", "the node's name (its --node-name)")
	fl.IPSliceVar(&ips, "ip", nil, "more IP addresses to name in the certificate")
	fl.StringSliceVar(&dns, "dns", nil, "more DNS names to name in the certificate")
	cmd.AddCommand(ca, cert)
	return cmd
}
