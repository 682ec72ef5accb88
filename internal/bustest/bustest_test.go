package bustest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestKillIsUnannounced kills a node: its peers lose its routes without
// hearing its shutdown notice, which a clean Shutdown sends before its
// routes close, so the meta leader still counts it among the online
// JetStream peers, as after a SIGKILL.
func TestKillIsUnannounced(t *testing.T) {
	c := StartCluster(t)
	var leader *server.Server
	poll.Until(t, time.Minute, "a meta leader counting 3 online peers", func() (bool, error) {
		for _, srv := range c.Nodes {
			if srv.JetStreamIsLeader() {
				leader = srv
				online := srv.JetStreamClusterPeers()
				return len(online) == 3, fmt.Errorf("online: %v", online)
			}
		}
		return false, errors.New("no meta leader")
	})
	var victim string
	for name, srv := range c.Nodes {
		if srv != leader {
			victim = name
			break
		}
	}
	c.Kill(victim)
	poll.Until(t, time.Minute, "the meta leader without a route to "+victim, func() (bool, error) {
		rz, err := leader.Routez(&server.RoutezOptions{})
		if err != nil {
			return false, err
		}
		for _, r := range rz.Routes {
			if r.RemoteName == victim {
				return false, nil
			}
		}
		return true, nil
	})
	if online := leader.JetStreamClusterPeers(); !slices.Contains(online, victim) {
		t.Fatalf("after the kill the meta leader counts %v online, not %s: the kill was announced", online, victim)
	}
}
