#!/usr/bin/env bash
# Build a 60-second 16 kHz mono 16-bit WAV of synthetic speech for the benchmarks:
# fixed English sentences, spoken by espeak-ng with a fixed rotation of voices/speeds, 0.25 s of
# silence between sentences, resampled with sox (no dither, -D -R) and cut to exactly 60.000 s (960000 samples).
# Deterministic for the same espeak-ng / sox versions.
#
# Usage: tools/bench/make_audio.sh [OUT.wav] [SECONDS]
#   default OUT: ${BENCH_WORK:-/work/bench-work}/speech60.wav, SECONDS: 60
set -euo pipefail

out=${1:-${BENCH_WORK:-/work/bench-work}/speech60.wav}
secs=${2:-60}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"

sentences=(
  "The quick brown fox jumps over the lazy dog near the river bank."
  "On Monday morning the train to the city was twenty minutes late."
  "She opened the window and the cold air filled the small kitchen."
  "A good benchmark measures the same work on the same machine, again and again."
  "The committee will meet on the third floor at half past two."
  "Please remember to bring the blue folder and two pencils tomorrow."
  "Most of the houses on this street were built about a hundred years ago."
  "He read the letter twice before he put it back in the envelope."
  "The weather report says it will rain in the north and stay dry in the south."
  "Our team finished the project one week before the deadline."
  "Speech recognition turns the sound of a voice into written words."
  "The old library keeps its rare books in a room without windows."
  "If you cannot find the key, look under the mat by the back door."
  "Seven children and their teacher walked to the museum after lunch."
  "The price of coffee went up again this year, but people still buy it."
  "After the storm, the workers cleared the fallen trees from the road."
  "Numbers like forty two and nineteen eighty four are easy to say."
  "The captain told the passengers to stay in their seats until the ship stopped."
  "Every evening the baker makes fresh bread for the next morning."
  "They spent the summer painting the fence and fixing the roof."
  "The small dog barked at the mail carrier and then ran behind the sofa."
  "Write the answer on the board so that everyone in the room can see it."
  "The garden was full of red flowers, tall grass and busy bees."
  "At the end of the day, the shop owner counted the money and locked the door."
)
voices=("en-us+m1" "en-us+f1" "en+m3" "en-gb+f2" "en-us+m4" "en+f3")
speeds=(160 150 170 155 165 145)

sox -D -n -r 22050 -c 1 -b 16 "$tmp/gap.wav" trim 0 0.25
parts=()
i=0
total=0
# Speak sentences (cycling) until there is more than enough audio, then cut to exactly $secs.
while [ "$(awk -v t="$total" -v s="$secs" 'BEGIN{print (t < s + 2)}')" = 1 ]; do
  n=$((i % ${#sentences[@]}))
  v=${voices[$((i % ${#voices[@]}))]}
  s=${speeds[$((i % ${#speeds[@]}))]}
  f="$tmp/s$(printf %03d $i).wav"
  espeak-ng -v "$v" -s "$s" -w "$f" "${sentences[$n]}"
  parts+=("$f" "$tmp/gap.wav")
  total=$(awk -v t="$total" -v d="$(soxi -D "$f")" 'BEGIN{print t + d + 0.25}')
  i=$((i + 1))
done

sox -D -R "${parts[@]}" -r 16000 -c 1 -b 16 -e signed-integer "$out" trim 0 "$secs"
echo "$out: $(soxi -D "$out") s, $(soxi -s "$out") samples, $(soxi -r "$out") Hz, $i sentences"
