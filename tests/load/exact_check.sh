# shellcheck shell=bash
# tests/load/exact_check.sh - the exact check of every 201 (tests/load/chaos.sh,
# tests/cluster_test.sh).  Source it, with sql() defined (the database as
# root), then:
#   exact_check IDS LOGS
# IDS: the customer ids of the 201s, one a line; LOGS: where check.sql and
# check.err go.  Each acknowledged customer must exist, with exactly one
# outbox row and exactly one welcome email, from that outbox message, with
# a processed id; the totals of customers, outbox, processed ids and
# welcome emails must be equal.  Each failure is appended to the array
# fail; sets acked, c_acked, c_distinct, c_lost_cust, c_lost_eff,
# c_doubled, c_outbox_not1, c_bad_link, t_cust, t_outbox, t_proc, t_wel.
# shellcheck disable=SC2034 # the c_* and t_* are the caller's
exact_check() {
	local IDS=$1 LOGS=$2 r
	acked=$(wc -l <"$IDS")
	{
		echo "CREATE TEMPORARY TABLE chaos_acked (id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, KEY (id));"
		grep -E '^[0-9a-fA-F-]{36}$' "$IDS" | awk '
			NR % 1000 == 1 { if (NR > 1) print ";"; printf "INSERT INTO chaos_acked VALUES " ; sep = "" }
			{ printf "%s(\x27%s\x27)", sep, $1; sep = "," }
			END { if (NR > 0) print ";" }'
		cat <<'EOF'
SELECT
 (SELECT COUNT(*) FROM chaos_acked),
 (SELECT COUNT(DISTINCT id) FROM chaos_acked),
 (SELECT COUNT(*) FROM chaos_acked a LEFT JOIN customers c ON c.id = a.id WHERE c.id IS NULL),
 (SELECT COUNT(*) FROM chaos_acked a LEFT JOIN (SELECT customer_id, COUNT(*) n FROM welcome_emails GROUP BY customer_id) w
     ON w.customer_id = a.id WHERE COALESCE(w.n, 0) = 0),
 (SELECT COUNT(*) FROM chaos_acked a JOIN (SELECT customer_id, COUNT(*) n FROM welcome_emails GROUP BY customer_id) w
     ON w.customer_id = a.id WHERE w.n > 1),
 (SELECT COUNT(*) FROM chaos_acked a LEFT JOIN (SELECT CAST(JSON_VALUE(payload, '$.id') AS CHAR(36) CHARACTER SET ascii) COLLATE ascii_bin cid, COUNT(*) n
     FROM outbox WHERE event_name = 'CustomerCreated' GROUP BY cid) o ON o.cid = a.id WHERE COALESCE(o.n, 0) <> 1),
 (SELECT COUNT(*) FROM chaos_acked a JOIN welcome_emails w ON w.customer_id = a.id
     LEFT JOIN outbox o ON o.message_id = w.message_id
       AND CAST(JSON_VALUE(o.payload, '$.id') AS CHAR(36) CHARACTER SET ascii) COLLATE ascii_bin = a.id
     LEFT JOIN processed_messages p ON p.message_id = w.message_id
     WHERE o.message_id IS NULL OR p.message_id IS NULL),
 (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM outbox),
 (SELECT COUNT(*) FROM processed_messages), (SELECT COUNT(*) FROM welcome_emails);
EOF
	} >"$LOGS/check.sql"
	if r=$(sql <"$LOGS/check.sql" 2>"$LOGS/check.err"); then
		read -r c_acked c_distinct c_lost_cust c_lost_eff c_doubled c_outbox_not1 \
			c_bad_link t_cust t_outbox t_proc t_wel <<<"$r"
	else
		fail+=("the exact check failed: $(head -c 300 "$LOGS/check.err")")
		c_acked='?' c_distinct='?' c_lost_cust='?' c_lost_eff='?' c_doubled='?'
		c_outbox_not1='?' c_bad_link='?' t_cust='?' t_outbox='?' t_proc='?' t_wel='?'
	fi
	[ "$c_acked" = "$acked" ] || fail+=("$acked ids in $IDS, $c_acked loaded")
	[ "$c_distinct" = "$c_acked" ] || fail+=("the same customer id in two 201s: $c_acked ids, $c_distinct distinct")
	[ "$c_lost_cust" = 0 ] || fail+=("LOST: $c_lost_cust acknowledged customers are not in the database")
	[ "$c_lost_eff" = 0 ] || fail+=("LOST: $c_lost_eff acknowledged customers have no welcome email")
	[ "$c_doubled" = 0 ] || fail+=("DOUBLED: $c_doubled acknowledged customers have more than one welcome email")
	[ "$c_outbox_not1" = 0 ] || fail+=("$c_outbox_not1 acknowledged customers do not have exactly one outbox row")
	[ "$c_bad_link" = 0 ] || fail+=("$c_bad_link welcome emails not from their customer's outbox message or without a processed id")
	[ "$t_cust" = "$t_outbox" ] && [ "$t_outbox" = "$t_proc" ] && [ "$t_proc" = "$t_wel" ] ||
		fail+=("totals differ: customers $t_cust, outbox $t_outbox, processed $t_proc, welcome emails $t_wel")
}
