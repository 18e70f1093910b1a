-- Cockpit schema 8: a batch's tasks in id order.
--
-- A batch's view reads its tasks a page at a time, newest first (`WHERE batch_id = ?
-- ORDER BY id DESC LIMIT ? OFFSET ?`). With only `tasks_batch` (batch_id, state) SQLite
-- read every task of the batch and sorted them for each page; on (batch_id, id) a page
-- is a range of the index, as long as the page. `tasks_batch` stays: it counts a
-- batch's tasks per state from the index alone.

CREATE INDEX tasks_batch_order ON tasks (batch_id, id);
