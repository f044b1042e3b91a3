package cluster

import "time"

// Backoff between join attempts.
const (
	joinBackoffFirst = 250 * time.Millisecond
	joinBackoffMax   = 5 * time.Second
)

// retryJoin tries the seeds again, with backoff, until one answers, another
// node joins this one, cfg.JoinAttempts are spent, or the Cluster stops.
// Start made the first attempt.
func (c *Cluster) retryJoin(seeds []string) {
	defer c.wg.Done()
	timer := time.NewTimer(joinBackoffFirst)
	defer timer.Stop()
	delay := joinBackoffFirst
	for attempt := 2; attempt <= c.cfg.JoinAttempts; attempt++ {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		if c.ml.NumMembers() > 1 {
			c.log.Info("another node joined this one: no more join attempts", logKeyAttempt, attempt)
			return
		}
		n, err := c.join(seeds)
		if err == nil && n > 0 {
			c.log.Info("joined the cluster", logKeySeeds, seeds, logKeyContacted, n, logKeyAttempt, attempt)
			return
		}
		c.log.Debug("join attempt failed", logKeySeeds, seeds, logKeyAttempt, attempt, logKeyError, err)
		delay = min(2*delay, joinBackoffMax)
		timer.Reset(delay)
	}
	c.log.Warn("no seed answered: running as a cluster of one until another node joins this one",
		logKeySeeds, seeds, logKeyAttempt, c.cfg.JoinAttempts)
}
