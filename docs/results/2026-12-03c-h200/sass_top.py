import csv,sys
f=sys.argv[1]; n=int(sys.argv[2]) if len(sys.argv)>2 else 40
rows=list(csv.reader(open(f)))
# multiple kernels? find header rows
hdr=None; data=[]
for r in rows:
    if len(r)>2 and r[0]=="Address": hdr=r; continue
    if hdr and len(r)==len(hdr): data.append(dict(zip(hdr,r)))
def num(x):
    try: return float(x.replace(',',''))
    except: return 0.0
tot=sum(num(d["Warp Stall Sampling (All Samples)"]) for d in data)
print("instructions",len(data),"samples",tot)
# region summary: bucket by 64 instr windows
cols=["stall_long_sb","stall_wait","stall_short_sb","stall_barrier","stall_math","stall_selected","stall_not_selected","stall_lg","stall_mio"]
for d in data: d["s"]=num(d["Warp Stall Sampling (All Samples)"])
# windows
W=int(sys.argv[3]) if len(sys.argv)>3 else 0
if W:
  for i in range(0,len(data),W):
    ch=data[i:i+W]; s=sum(d["s"] for d in ch)
    if s/tot>0.01:
      ops={}
      for d in ch:
        op=d["Source"].split()[0] if d["Source"] else "";
        if op.startswith("@"): op=d["Source"].split()[1]
        ops[op.split('.')[0]]=ops.get(op.split('.')[0],0)+d["s"]
      top=sorted(ops.items(),key=lambda x:-x[1])[:5]
      print(f"{data[i]['Address']} {100*s/tot:5.1f}% ", " ".join(f"{k}:{100*v/tot:.1f}" for k,v in top), " | ", " ".join(f"{c[6:]}={100*sum(num(d[c]) for d in ch)/tot:.1f}" for c in cols if sum(num(d[c]) for d in ch)/tot>0.005))
else:
  for d in sorted(data,key=lambda d:-d["s"])[:n]:
    print(f'{d["Address"]} {100*d["s"]/tot:5.2f}% ex={d["Instructions Executed"]:>10} {d["Source"][:70]:70s}', " ".join(f"{c[6:]}={num(d[c]):.0f}" for c in cols if num(d[c])>0.2*d["s"]))
