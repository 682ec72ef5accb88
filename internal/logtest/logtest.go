// Package logtest hooks tests onto what the code under test logs: a fault
// injected at the moment the code reports reaching a state, instead of a
// guess at when that will be.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// OnMessage returns a logger that discards its records and runs fn once, at
// the first record whose message is msg.
func OnMessage(msg string, fn func()) *slog.Logger {
	return slog.New(onMessage{Handler: slog.DiscardHandler, msg: msg, once: &sync.Once{}, fn: fn})
}

type onMessage struct {
	slog.Handler
	msg  string
	once *sync.Once
	fn   func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(h.fn)
	}
	return h.Handler.Handle(ctx, r)
}

func (h onMessage) WithAttrs(a []slog.Attr) slog.Handler {
	return onMessage{h.Handler.WithAttrs(a), h.msg, h.once, h.fn}
}

func (h onMessage) WithGroup(g string) slog.Handler {
	return onMessage{h.Handler.WithGroup(g), h.msg, h.once, h.fn}
}
