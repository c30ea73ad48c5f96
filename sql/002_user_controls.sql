-- mod_imgstore schema, version 2: user controls (issue 10).
-- views_left: views an image still has (NULL: no limit); the view that takes
-- it to 0 deletes the row. delete_hash: SHA-256 of the delete token (the
-- token itself is never stored); NULL for rows stored before this version.
ALTER TABLE imgstore_images
    ADD COLUMN views_left integer CHECK (views_left BETWEEN 1 AND 1000000),
    ADD COLUMN delete_hash bytea CHECK (octet_length(delete_hash) = 32);

-- Spend one view of a live row, and delete the row with its last view, in
-- one statement (one transaction): the row lock taken by the UPDATE orders
-- concurrent viewers, so never more views are granted than views_left held.
-- Returns the views left after this one (0: the row is gone now), or no row
-- when there was none to spend (deleted, expired or used up meanwhile).
CREATE FUNCTION imgstore_spend_view(p_id bytea, p_now bigint) RETURNS SETOF integer
LANGUAGE plpgsql AS $$
DECLARE
    left_after integer;
BEGIN
    UPDATE imgstore_images SET views_left = views_left - 1
        WHERE id = p_id AND expires_at > p_now AND views_left >= 2
        RETURNING views_left INTO left_after;
    IF FOUND THEN
        RETURN NEXT left_after;
        RETURN;
    END IF;
    DELETE FROM imgstore_images WHERE id = p_id AND expires_at > p_now AND views_left = 1;
    IF FOUND THEN
        RETURN NEXT 0;
    END IF;
END
$$;
