package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const promotionColumns = `id, workload_id, client_id, job_id, candidate, variant, mode, canary_percent, endpoint, served_model,
	deployment_id, icl_prompt, status, reason, created_by, created_at, ended_at, evidence`

func scanPromotion(row interface{ Scan(...any) error }) (*flywheel.PromotionRoute, error) {
	var (
		p                     flywheel.PromotionRoute
		variant, mode, status string
		ended                 sql.NullTime
		evidence              sql.NullString
	)
	if err := row.Scan(&p.ID, &p.WorkloadID, &p.ClientID, &p.JobID, &p.Candidate, &variant, &mode, &p.CanaryPercent,
		&p.Endpoint, &p.ServedModel, &p.DeploymentID, &p.ICLPrompt, &status, &p.Reason, &p.CreatedBy, &p.CreatedAt,
		&ended, &evidence); err != nil {
		return nil, err
	}
	p.Variant, p.Mode, p.Status = flywheel.PromotionVariant(variant), flywheel.PromotionMode(mode), flywheel.PromotionStatus(status)
	p.CreatedAt = p.CreatedAt.UTC()
	p.EndedAt = timePtr(ended)
	if evidence.Valid && evidence.String != "" {
		p.Evidence = json.RawMessage(evidence.String)
	}
	return &p, nil
}

// CreatePromotion stores p as the active promotion of its workload and
// client, in one transaction with marking the one active before it
// replaced; it returns that one (nil when there was none). p's ID and
// CreatedAt are set when empty and its Status is set to active.
func (s *Store) CreatePromotion(ctx context.Context, p *flywheel.PromotionRoute) (replaced *flywheel.PromotionRoute, err error) {
	if p.ID == "" {
		p.ID = NewID(s.now())
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now().UTC()
	}
	p.Status = flywheel.PromotionActive
	err = s.InTx(ctx, func(q *Queries) error {
		old, err := q.ActivePromotion(ctx, p.WorkloadID, p.ClientID)
		if err != nil && !isNotFound(err) {
			return err
		}
		if old != nil {
			if _, err := q.EndPromotion(ctx, old.ID, flywheel.PromotionReplaced, "replaced by promotion "+p.ID, nil, p.CreatedAt); err != nil {
				return err
			}
			replaced = old
		}
		_, err = q.exec(ctx, `INSERT INTO promotions (`+promotionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.WorkloadID, p.ClientID, p.JobID, p.Candidate, string(p.Variant), string(p.Mode), p.CanaryPercent,
			p.Endpoint, p.ServedModel, p.DeploymentID, p.ICLPrompt, string(p.Status), p.Reason, p.CreatedBy, p.CreatedAt.UTC(),
			nullTime(p.EndedAt), nullString(string(p.Evidence)))
		if err != nil {
			return fmt.Errorf("insert promotion: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		replaced.Status = flywheel.PromotionReplaced
	}
	return replaced, nil
}

// GetPromotion returns one promotion.
func (q *Queries) GetPromotion(ctx context.Context, id string) (*flywheel.PromotionRoute, error) {
	p, err := scanPromotion(q.queryRow(ctx, `SELECT `+promotionColumns+` FROM promotions WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "promotion "+id)
	}
	return p, nil
}

// ActivePromotion returns the active promotion of a workload and client.
func (q *Queries) ActivePromotion(ctx context.Context, workloadID, clientID string) (*flywheel.PromotionRoute, error) {
	p, err := scanPromotion(q.queryRow(ctx, `SELECT `+promotionColumns+` FROM promotions
		WHERE workload_id = ? AND client_id = ? AND status = ?`, workloadID, clientID, string(flywheel.PromotionActive)))
	if err != nil {
		return nil, notFound(err, "active promotion of "+workloadID+"/"+clientID)
	}
	return p, nil
}

// ActivePromotions returns every active promotion (the capture proxy's
// routing table).
func (q *Queries) ActivePromotions(ctx context.Context) ([]flywheel.PromotionRoute, error) {
	rows, err := q.query(ctx, `SELECT `+promotionColumns+` FROM promotions WHERE status = ? ORDER BY created_at, id`,
		string(flywheel.PromotionActive))
	if err != nil {
		return nil, fmt.Errorf("list active promotions: %w", err)
	}
	defer rows.Close()
	out := []flywheel.PromotionRoute{}
	for rows.Next() {
		p, err := scanPromotion(rows)
		if err != nil {
			return nil, fmt.Errorf("scan promotion: %w", err)
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// ListPromotions returns the promotions of a workload (every workload when
// empty), of one client when clientID is not empty, newest first.
func (q *Queries) ListPromotions(ctx context.Context, workloadID, clientID string) ([]flywheel.Promotion, error) {
	query, args := `SELECT `+promotionColumns+` FROM promotions WHERE 1 = 1`, []any{}
	if workloadID != "" {
		query += ` AND workload_id = ?`
		args = append(args, workloadID)
	}
	if clientID != "" {
		query += ` AND client_id = ?`
		args = append(args, clientID)
	}
	rows, err := q.query(ctx, query+` ORDER BY created_at DESC, id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list promotions: %w", err)
	}
	defer rows.Close()
	out := []flywheel.Promotion{}
	for rows.Next() {
		p, err := scanPromotion(rows)
		if err != nil {
			return nil, fmt.Errorf("scan promotion: %w", err)
		}
		out = append(out, p.Promotion)
	}
	return out, rows.Err()
}

// EndPromotion ends an active promotion with status (rolled_back or
// replaced), the reason and the evidence. It reports false, changing
// nothing, when the promotion is not active.
func (q *Queries) EndPromotion(ctx context.Context, id string, status flywheel.PromotionStatus, reason string, evidence json.RawMessage, at time.Time) (bool, error) {
	res, err := q.exec(ctx, `UPDATE promotions SET status = ?, reason = ?, evidence = ?, ended_at = ? WHERE id = ? AND status = ?`,
		string(status), reason, nullString(string(evidence)), at.UTC(), id, string(flywheel.PromotionActive))
	if err != nil {
		return false, fmt.Errorf("end promotion %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("end promotion %s: %w", id, err)
	}
	return n > 0, nil
}

// SetPromotionServing records what serves a promotion: the endpoint, the
// model name to send it and the platform's deployment id.
func (q *Queries) SetPromotionServing(ctx context.Context, id, endpoint, servedModel, deploymentID string) error {
	if _, err := q.exec(ctx, `UPDATE promotions SET endpoint = ?, served_model = ?, deployment_id = ? WHERE id = ?`,
		endpoint, servedModel, deploymentID, id); err != nil {
		return fmt.Errorf("set promotion %s endpoint: %w", id, err)
	}
	return nil
}
