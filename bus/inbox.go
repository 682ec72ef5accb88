package bus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Role is the part a process plays on the bus. Each role has its own NATS
// user in infra/nats/nats.conf and its own inbox prefix: JetStream answers
// every request (a pulled frame, a job record, a replayed result) on the
// requester's inbox, so with one shared "_INBOX.>" any user allowed to
// subscribe there would read every other role's traffic.
type Role string

// Roles that connect to the bus.
const (
	// RoleCoordinator owns the topology and job records and follows results.
	RoleCoordinator Role = "coordinator"
	// RoleIngest takes video tasks and publishes frames and video events.
	RoleIngest Role = "ingest"
	// RoleWorker takes frames and publishes results and heartbeats.
	RoleWorker Role = "worker"
)

// Roles lists every role, for checks that cover them all.
func Roles() []Role { return []Role{RoleCoordinator, RoleIngest, RoleWorker} }

// InboxPrefix is the prefix of the role's reply subjects: nats.conf lets the
// role's user subscribe to InboxPrefix(role)+".>" and to no other inbox.
func InboxPrefix(r Role) string { return "_INBOX_" + string(r) }

// InboxOption makes a connection use the role's inbox prefix; connect every
// role's processes with it, or their JetStream requests get no answer.
func InboxOption(r Role) (nats.Option, error) {
	switch r {
	case RoleCoordinator, RoleIngest, RoleWorker:
		return nats.CustomInboxPrefix(InboxPrefix(r)), nil
	}
	return nil, fmt.Errorf("%w: role %q: want coordinator, ingest or worker", ErrBadName, r)
}
