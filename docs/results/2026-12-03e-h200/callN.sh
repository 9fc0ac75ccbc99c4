source .dev/run.sh
g() { grep "^| kitty\|^| auto" $1 | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
ab() { local n=$1; shift; timeout 60 "$@" > $R/$n.md 2>$R/$n.err; echo "$n rc=$?"; g $R/$n.md; grep -o "splits [0-9]* x [0-9]*" $R/$n.err | paste -sd' '; }
U="--shape 64x8192 --shape 8x8192 --shape 32x8192"
X="--shape 267x65-8192"
O="--no-copy --iters 30 --mode kitty-pro"
step warps
ab w4 .dev/base/kab_w4 $O $U $X
for c in 2 4 8; do KITTY_ATTN_CTAS_PER_SM=$c ab w2_c$c .dev/base/kab_w2 $O $U; done
for c in 4 8 16; do KITTY_ATTN_CTAS_PER_SM=$c ab w1_c$c .dev/base/kab_w1 $O $U; done
for u in 0 36 24; do KITTY_ATTN_SPLIT_UNITS=$u ab w2_u$u .dev/base/kab_w2 $O $X; done
for u in 0 24 16; do KITTY_ATTN_SPLIT_UNITS=$u ab w1_u$u .dev/base/kab_w1 $O $X; done
ab w4b .dev/base/kab_w4 $O $U $X
step done
