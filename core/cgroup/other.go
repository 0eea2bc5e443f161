//go:build !linux

package cgroup

import (
	"context"
	"fmt"
)

// Manager is only implemented on Linux.
type Manager struct{}

// Group is only implemented on Linux.
type Group struct{}

// Leftover is a group found on disk.
type Leftover struct {
	Name  string
	Paths []string
}

// Detect always fails outside Linux.
func Detect() (*Manager, error) { return nil, fmt.Errorf("%w: not linux", ErrUnavailable) }

func (m *Manager) Mode() string                      { return "" }
func (m *Manager) Base() string                      { return "" }
func (m *Manager) EnableLimits() error               { return ErrUnavailable }
func (m *Manager) Groups(string) ([]Leftover, error) { return nil, ErrUnavailable }
func (m *Manager) RemovePaths([]string) (int, error) { return 0, ErrUnavailable }
func (m *Manager) RemoveScope(string)                {}
func (m *Manager) Create(scope, name string, lim Limits) (*Group, error) {
	return nil, ErrUnavailable
}
func (m *Manager) Open([]string) (*Group, error)   { return nil, ErrUnavailable }
func (g *Group) Holds(int) bool                    { return false }
func (g *Group) FD() int                           { return -1 }
func (g *Group) Close()                            {}
func (g *Group) Dir() string                       { return "" }
func (g *Group) Paths() []string                   { return nil }
func (g *Group) Limits() Limits                    { return Limits{} }
func (g *Group) Join(int) error                    { return ErrUnavailable }
func (g *Group) Procs() ([]int, error)             { return nil, ErrUnavailable }
func (g *Group) Kill(context.Context) (int, error) { return 0, ErrUnavailable }
func (g *Group) Remove() error                     { return ErrUnavailable }
