# frozen_string_literal: true

# The values bench_data.rb and data_worker.rb move, sized as the Python
# and Node benches size theirs (by compact JSON), and the clock both time
# with.

SHAPES = {
  "records" => lambda { |n|
    { "items" => Array.new(n) { |i| { "id" => i, "name" => "item #{i}", "tags" => %w[a b], "score" => i * 1.5, "ok" => i.even? } } }
  },
  "numbers" => ->(n) { Array.new(n) { |i| i * 1.25 } },
  "strings" => ->(n) { Array.new(n) { |i| "string number #{i}" } },
}.freeze

def clock
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def sized(shape, bytes)
  per = JSON.generate(SHAPES[shape].call(100)).bytesize / 100.0
  SHAPES[shape].call([1, (bytes / per).round].max)
end
