# frozen_string_literal: true

module Polyracer
  # The gem's version (the same as the polyracer core crate it embeds).
  VERSION = "0.1.0"
end
