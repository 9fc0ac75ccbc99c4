source .dev/run.sh
step weights
S="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192 --shape 16x4096"
g() { grep "^|" $1 | grep -v "^| mode\|---"; }
for wt in 24,8,8 12,8,8 16,8,8 32,8,8 40,8,8 24,4,8 24,12,8 24,8,4 24,8,12 24,8,8; do
KITTY_ATTN_WEIGHTS=$wt timeout 40 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $S > $R/w_$wt.md 2>&1; echo "w=$wt rc=$?"; g $R/w_$wt.md | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'
done
for c in 3 4; do
KITTY_ATTN_CTAS_PER_SM=$c timeout 40 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $S > $R/c_$c.md 2>&1; echo "c=$c rc=$?"; g $R/c_$c.md | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'
done
step done
