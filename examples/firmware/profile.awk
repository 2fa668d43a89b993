# profile.awk: the per-op table of `make firmware-test`. Reads lines tagged
# by firmware.mk:
#   nm VARIANT ADDR SIZE TYPE SYMBOL    (arm-none-eabi-nm -S of the objects)
#   size VARIANT TEXT                   (arm-none-eabi-size text of each)
#   total VARIANT INSTRUCTIONS          (the unprofiled run, per inference)
#   profile VARIANT OP WHAT|MACS|INSTRUCTIONS|RAM|TABLES   (the -DCNN_PROFILE run)
# and prints, per variant, one row per op (flash = its tables + its row
# function), a row for the rest (driver, API, shared kernels, hooks'
# residue) and the total (the unprofiled count, the whole object).
function hex(s,   i, v) {
  v = 0
  for (i = 1; i <= length(s); i++)
    v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
  return v
}
$1 == "nm" && ($5 == "t" || $5 == "T") { code[$2, $6] = hex($4) }
$1 == "size" { text[$2] = $3 }
$1 == "total" { total[$2] = $3 }
$1 == "profile" {
  v = $2
  if (!(v in nops)) { order[++nv] = v; nops[v] = 0 }
  line = $0
  sub(/^profile [^ ]+ [0-9]+ /, "", line)
  n = ++nops[v]
  split(line, f, "|")
  what[v, n] = f[1]; macs[v, n] = f[2]; ins[v, n] = f[3]; ram[v, n] = f[4]; tab[v, n] = f[5]
}
function per(i, m) { return m > 0 ? sprintf("%.2f", i / m) : "-" }
END {
  for (k = 1; k <= nv; k++) {
    v = order[k]
    printf "\n%s: per op, instructions per inference (QEMU -icount, Cortex-M4)\n", v
    printf "| op | kind | MACs | instructions | per MAC | RAM B | flash B |\n"
    printf "|---:|---|---:|---:|---:|---:|---:|\n"
    sm = si = sr = sf = 0
    for (n = 1; n <= nops[v]; n++) {
      fl = tab[v, n] + code[v, "op" n]
      printf "| %d | %s | %d | %d | %s | %d | %d |\n", n, what[v, n], macs[v, n], ins[v, n],
             per(ins[v, n], macs[v, n]), ram[v, n], fl
      sm += macs[v, n]; si += ins[v, n]; sr += ram[v, n]; sf += fl
    }
    printf "| | rest (driver, API, shared kernels) | | %d | | | %d |\n", total[v] - si, text[v] - sf
    printf "| | **total** | %d | %d | %s | %d | %d |\n", sm, total[v], per(total[v], sm), sr, text[v]
  }
}
