package etcd

// PauseWatch ends the Store's watch and keeps it from resuming until resume
// is called, as a broken connection does.
func (s *Store) PauseWatch() (resume func()) {
	hold := make(chan struct{})
	s.mu.Lock()
	s.hold = hold
	stop := s.stopWatch
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(hold)
	}
}

// LeaseID is the etcd lease the Store's claims and endpoints live under.
func (s *Store) LeaseID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.lease)
}

// Reloads counts the full loads of the prefix: one at Open, one for each
// watch resumed after compaction.
func (s *Store) Reloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloads
}
