package mesh

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"strconv"
)

// callerKey carries, in a control request's context, who is at the other
// end of its connection.
type callerKey struct{}

// connCaller names the peer of a control connection for the rollout record:
// "name (uid N)" for a unix-socket peer whose credentials the kernel gives,
// "" when it gives none.
func connCaller(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	uid, ok := peerUID(uc)
	if !ok {
		return ctx
	}
	who := fmt.Sprintf("uid %d", uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		who = fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return context.WithValue(ctx, callerKey{}, who)
}

// caller returns who made a control request: the unix-socket peer, else
// "token" on the TCP listener (which demands it), else "unknown".
func caller(ctx context.Context, tokenListener bool) string {
	if who, ok := ctx.Value(callerKey{}).(string); ok {
		return who
	}
	if tokenListener {
		return "token"
	}
	return "unknown"
}
