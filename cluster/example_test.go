package cluster_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/quirehq/quire/cluster"
)

// Two nodes on free loopback ports: the second joins the first, and the
// first hears about it.
func Example() {
	ctx := context.Background()
	start := func(name string, join ...string) *cluster.Cluster {
		c, err := cluster.Start(ctx, cluster.Config{
			Name:     name,
			BindAddr: "127.0.0.1:0", // a free port; production uses a fixed one, e.g. :7946
			Join:     join,
			Meta:     cluster.Meta{HTTPAddr: "127.0.0.1:8080", RemoteAddr: "127.0.0.1:8090", Capacity: 8},
			Log:      slog.New(slog.DiscardHandler),
		})
		if err != nil {
			panic(err)
		}
		return c
	}
	first := start("node-1")
	defer first.Close()
	events, stop := first.Subscribe()
	defer stop()

	second := start("node-2", first.GossipAddr())
	defer second.Close()
	e := <-events
	fmt.Println(e.Kind, e.Member.Name, e.Member.Capacity)

	if err := second.UpdateMeta(ctx, func(m *cluster.Meta) { m.Load = 3 }); err != nil {
		panic(err)
	}
	e = <-events
	fmt.Println(e.Kind, e.Member.Name, e.Member.Load)
	for _, m := range first.Members() {
		fmt.Println(m.Name, m.State, m.Load)
	}
	// Output:
	// joined node-2 8
	// updated node-2 3
	// node-1 alive 0
	// node-2 alive 3
}
