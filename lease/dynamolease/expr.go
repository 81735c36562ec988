package dynamolease

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// expr builds the condition and update expressions of one request. Every
// attribute goes through a name placeholder ("#leaseCounter"), so DynamoDB's
// reserved words never matter.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
	cond   []string
	set    []string
	remove []string
	add    []string
	delete []string // DELETE clauses: elements removed from a set
}

func newExpr() *expr {
	return &expr{names: make(map[string]string), values: make(map[string]types.AttributeValue)}
}

// n returns the placeholder of attribute attr.
func (e *expr) n(attr string) string {
	e.names["#"+attr] = attr
	return "#" + attr
}

// v returns a placeholder for value av.
func (e *expr) v(av types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = av
	return p
}

// counterIs conditions the request on leaseCounter = c, which also requires
// the item to exist.
func (e *expr) counterIs(c int64) {
	e.cond = append(e.cond, e.n(attrLeaseCounter)+" = "+e.v(numberInt(c)))
}

// ownerIs conditions the request on leaseOwner = owner, or on leaseOwner
// being absent when owner is "" (KCL's expectation for an unowned lease).
func (e *expr) ownerIs(owner string) {
	if owner == "" {
		e.cond = append(e.cond, "attribute_not_exists("+e.n(attrLeaseOwner)+")")
		return
	}
	e.cond = append(e.cond, e.n(attrLeaseOwner)+" = "+e.v(&types.AttributeValueMemberS{Value: owner}))
}

// bumpCounter increments leaseCounter.
func (e *expr) bumpCounter() {
	c := e.n(attrLeaseCounter)
	e.set = append(e.set, c+" = "+c+" + "+e.v(numberInt(1)))
}

func (e *expr) setS(attr, s string) {
	e.set = append(e.set, e.n(attr)+" = "+e.v(&types.AttributeValueMemberS{Value: s}))
}

func (e *expr) setAV(attr string, av types.AttributeValue) {
	e.set = append(e.set, e.n(attr)+" = "+e.v(av))
}

func (e *expr) del(attrs ...string) {
	for _, a := range attrs {
		e.remove = append(e.remove, e.n(a))
	}
}

func (e *expr) condition() *string {
	if len(e.cond) == 0 {
		return nil
	}
	return aws.String(strings.Join(e.cond, " AND "))
}

func (e *expr) update() *string {
	var clauses []string
	for _, c := range []struct {
		verb  string
		parts []string
	}{{"SET", e.set}, {"REMOVE", e.remove}, {"ADD", e.add}, {"DELETE", e.delete}} {
		if len(c.parts) > 0 {
			clauses = append(clauses, c.verb+" "+strings.Join(c.parts, ", "))
		}
	}
	if len(clauses) == 0 {
		return nil
	}
	return aws.String(strings.Join(clauses, " "))
}

func (e *expr) attributeValues() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil // DynamoDB rejects an empty map
	}
	return e.values
}

// countAttempts returns a per-call option that counts in n the attempts the
// SDK's retryer makes. A conditional write that fails its condition after
// more than one attempt may have been applied by an earlier attempt whose
// response was lost (a "spurious" failure, which KCL also recovers from).
func countAttempts(n *atomic.Int32) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			// Finalize middlewares added after the retry middleware run once
			// per attempt.
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("dynamolease.CountAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					n.Add(1)
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
}
