package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// writeTurns hands this process's SQLite write transactions the database's
// write lock one at a time, in the order they asked for it.
//
// SQLite alone does not queue writers: one that finds the lock taken sleeps
// and polls (every 100 ms once it has waited a while), and a writer that
// commits and begins again at once, as the journal's indexer does when it
// is behind, takes the lock back between two polls. With index transactions
// slow enough (a slow disk, the race detector) a session's CreateRecording
// could lose every poll for SQLiteBusyTimeout and fail, refusing the
// session. Waiting here first, in a FIFO queue (a channel's blocked senders
// are served in order), a writer waits for at most the transactions queued
// before it; SQLite's busy handler is left for writers in other processes.
type writeTurns chan struct{}

func newWriteTurns() writeTurns { return make(writeTurns, 1) }

// errWriteTurnTimeout is take's error once SQLiteBusyTimeout has passed.
var errWriteTurnTimeout = errors.New("sqlite: timed out waiting for this process's other writes")

// take waits for the write turn, at most SQLiteBusyTimeout. A nil error
// means the caller holds it and must release it once its transaction has
// committed or rolled back.
func (w writeTurns) take(ctx context.Context) error {
	select {
	case w <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(SQLiteBusyTimeout)
	defer wait.Stop()
	select {
	case w <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		return fmt.Errorf("%w for %s (is the disk slow?)", errWriteTurnTimeout, SQLiteBusyTimeout)
	}
}

// release gives the turn to the next writer waiting, if any.
func (w writeTurns) release() { <-w }
