package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/internal/identity"
	"github.com/canaryd/canaryd/web/auth"
)

// Operator ends a running canary by hand: the report page's abort and promote forms.
// *analysis.Scheduler implements it.
type Operator interface {
	Abort(ctx context.Context, id, reason string, actuate bool) (*analysis.Canary, error)
	Promote(ctx context.Context, id, reason string) (*analysis.Canary, error)
}

// overrideView is the report page's abort and promote forms.
type overrideView struct {
	// Token is the forms' CSRF token: tied to the caller and the canary, made with a key
	// only this process knows, so a page on another site cannot know it.
	Token string
}

// maxFormBytes caps a form's body: a token and a reason of at most 1000 bytes.
const maxFormBytes = 8 << 10

// newCSRFKey is a fresh random key: tokens of pages served by an earlier process are
// refused, which costs a reload of the page.
func newCSRFKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("ui: no randomness for the CSRF key: %v", err)) // the OS is broken
	}
	return k
}

// csrfToken is HMAC-SHA256(key, who, canary id): the caller's identity (identity.Actor,
// the token's name with authentication), so a token works only for the one who was
// served it.
func (h *Handler) csrfToken(ctx context.Context, id string) string {
	m := hmac.New(sha256.New, h.o.CSRFKey)
	m.Write([]byte("canaryd-ui-override\x00" + identity.From(ctx, Surface+":"+auth.Anonymous).Name + "\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *Handler) override(w http.ResponseWriter, r *http.Request, promote bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxIDLen {
		h.notFound(w, id)
		return
	}
	back := "../" + id
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, http.StatusBadRequest, "../../", "Bad form", "The form could not be read: "+err.Error()+".")
		return
	}
	want := h.csrfToken(r.Context(), id)
	if got := r.PostForm.Get("csrf"); !hmac.Equal([]byte(got), []byte(want)) {
		h.errorPage(w, http.StatusForbidden, "../../", "Form expired or not from this page",
			"The form's token does not match: it comes from another page, another user, or a canaryd that has restarted since. Open the canary's page again and resubmit.")
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	// The audit log reads the caller from the context, as the auth middleware set it.
	ctx := r.Context()
	var err error
	if promote {
		_, err = h.op.Promote(ctx, id, reason)
	} else {
		_, err = h.op.Abort(ctx, id, reason, r.PostForm.Get("actuate") != "")
	}
	var ie *analysis.InputError
	switch {
	case err == nil:
		http.Redirect(w, r, back, http.StatusSeeOther)
	case errors.Is(err, analysis.ErrNotFound):
		h.notFound(w, id)
	case errors.Is(err, analysis.ErrFinished):
		h.errorPage(w, http.StatusConflict, "../../", "Canary already ended", "The canary ended before the form was sent; nothing was changed.")
	case errors.As(err, &ie):
		h.errorPage(w, http.StatusBadRequest, "../../", "Bad "+ie.Field, ie.Field+": "+ie.Msg+".")
	default:
		if r.Context().Err() != nil {
			return
		}
		h.log.Error("override failed", zap.String("canary", id), zap.Bool("promote", promote), zap.Error(err))
		h.errorPage(w, http.StatusInternalServerError, "../../", "The override failed", "canaryd could not end the canary; its log says why. Nothing was changed.")
	}
}
