source .dev/run.sh
step sweep
S="--shape 256x4096 --shape 128x8192 --shape 64x8192 --shape 32x8192 --shape 16x8192 --shape 8x32768"
g() { grep "^|" $1 | grep -v "^| mode\|---" | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
for pc in "1 2" "2 2" "4 2" "1 3" "2 3" "4 3" "1 2"; do set -- $pc
KITTY_ATTN_FP_PARTS=$1 KITTY_ATTN_CTAS_PER_SM=$2 timeout 60 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $S > $R/p$1_c$2.md 2>&1; echo "parts=$1 ctas=$2 rc=$?"; g $R/p$1_c$2.md
done
timeout 60 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $S > $R/default.md 2>&1; echo "default rc=$?"; g $R/default.md; grep splits $R/default.md
step done
