package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// redispatch puts back the tasks of a resumed job's videos that nobody will
// ingest any more: a video without its end event whose task is still
// stored, was delivered, and is no longer pending on the ingest consumer
// (it reached MaxDeliver and its advisory was never turned into the
// video's end). A task that was acked is gone from the work queue.
//
// JetStream does not say which stored messages a consumer has given up on,
// only how many: the stored ones, less those not yet delivered, less those
// pending. Up to that many of the job's delivered tasks are put back, oldest
// first; guessing wrong costs a video ingested twice, whose duplicate frames
// and results are dropped, never a video lost. Without this such a job would stay RUNNING for good,
// across any number of coordinator restarts, since Dispatched is set.
func (s *Service) redispatch(ctx context.Context, rec *Record) error {
	results, err := s.js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", bus.ResultsStream, err)
	}
	videos, err := s.js.Stream(ctx, bus.VideosStream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", bus.VideosStream, err)
	}
	cons, err := s.js.Consumer(ctx, bus.VideosStream, bus.IngestConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", bus.IngestConsumer, err)
	}
	// The stream first: a task published in between is then counted as
	// not delivered yet, never as given up on.
	vinfo, err := videos.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", bus.VideosStream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", bus.IngestConsumer, err)
	}
	held := info.NumPending + uint64(info.NumAckPending)
	if vinfo.State.Msgs <= held {
		return nil // every stored task is still the consumer's
	}
	abandoned := vinfo.State.Msgs - held
	for _, v := range rec.Videos {
		if abandoned == 0 {
			return nil
		}
		ended, err := hasEnded(ctx, results, rec.ID, v.Name)
		if err != nil {
			return err
		}
		if ended {
			continue
		}
		task, err := videos.GetLastMsgForSubject(ctx, bus.VideoSubject(rec.ID, v.Name))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acked: ingest published the end, or is about to
		}
		if err != nil {
			return fmt.Errorf("task of %s/%s: %w", rec.ID, v.Name, err)
		}
		seq := task.Sequence
		if seq > info.Delivered.Stream {
			continue // not delivered yet
		}
		abandoned--
		// The id names the task it replaces: two coordinators resuming the
		// job at once put back one task.
		id := "task." + rec.ID + "." + v.Name + ".after." + strconv.FormatUint(seq, 10)
		if err := s.publishTask(ctx, rec, v, id); err != nil {
			return err
		}
		if err := videos.DeleteMsg(ctx, seq); err != nil {
			if _, gerr := videos.GetMsg(ctx, seq); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
				return fmt.Errorf("delete abandoned task %d of %s/%s: %w", seq, rec.ID, v.Name, err)
			}
		}
		s.opts.Logger.Warn("video task was abandoned; dispatched again", "job", rec.ID, "video", v.Name, "stream_seq", seq)
	}
	return nil
}

// hasEnded reports whether the video's end event is on the results stream.
// Events carry their type's Msg-Id, so an end event, once there, is the
// last event of its subject.
func hasEnded(ctx context.Context, results jetstream.Stream, job, video string) (bool, error) {
	m, err := results.GetLastMsgForSubject(ctx, bus.EventSubject(job, video))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("events of %s/%s: %w", job, video, err)
	}
	var e bus.Event
	if err := bus.DecodeEvent(m.Data, &e); err != nil {
		return false, nil // unreadable: the coordinator ignores it too
	}
	return e.Type == bus.VideoEnded, nil
}
