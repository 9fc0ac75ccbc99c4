# Region shares of instructions and stall samples in an ncu SASS CSV (callL/sass_mixed.csv.xz,
# unpacked): index ranges of the 3054751 decode kernel, read off its basic blocks by hand.
import csv,sys
rows=list(csv.reader(open(sys.argv[1])))
hdr=None;data=[]
for r in rows:
    if len(r)>2 and r[0]=="Address": hdr=r; continue
    if hdr and len(r)==len(hdr): data.append(dict(zip(hdr,r)))
def num(x):
    try: return float(x.replace(',',''))
    except: return 0.0
R=[("prologue",0,844),("unit bookkeeping + staging",844,1147),("full-precision units (sink, tails, K-only pages' V)",1147,2904),("K page: scores, rank map, boosted ranks",2904,3250),("softmax",3250,3456),("full-precision units",3456,3699),("V page: PV",3699,4014),("full-precision units",4014,5202),("unit bookkeeping + staging",5202,5210),("end barrier, warp merge, output",5210,len(data))]
agg={}
ti=sum(num(d["Instructions Executed"]) for d in data); ts=sum(num(d["Warp Stall Sampling (All Samples)"]) for d in data)
for name,a,b in R:
    i=sum(num(d["Instructions Executed"]) for d in data[a:b]); s=sum(num(d["Warp Stall Sampling (All Samples)"]) for d in data[a:b])
    x=agg.setdefault(name,[0,0]); x[0]+=i; x[1]+=s
for k,(i,s) in agg.items(): print(f"| {k} | {100*i/ti:.1f}% | {100*s/ts:.1f}% |")
