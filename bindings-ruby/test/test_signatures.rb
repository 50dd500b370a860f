# frozen_string_literal: true

require_relative "test_helper"
require "polyracer/mini_racer"

# sig/*.rbs parse and match the public methods the classes really have.
class TestSignatures < Minitest::Test
  SIG = File.expand_path("../sig", __dir__)

  def declarations
    require "rbs"
    Dir[File.join(SIG, "*.rbs")].flat_map do |f|
      parsed = RBS::Parser.parse_signature(File.read(f))
      parsed.is_a?(Array) && parsed.size == 3 ? parsed.last : parsed
    end
  end

  def each_class(decls, prefix = nil, &block)
    decls.each do |d|
      next unless d.respond_to?(:members)

      name = [prefix, d.name.to_s].compact.join("::")
      yield name, d if d.is_a?(RBS::AST::Declarations::Class)
      each_class(d.members, name, &block)
    end
  end

  def test_signatures_match_the_api
    begin
      decls = declarations
    rescue LoadError
      skip "the rbs library is not installed"
    end
    checked = 0
    each_class(decls) do |name, decl|
      klass = Object.const_get(name)
      decl.members.grep(RBS::AST::Members::MethodDefinition).each do |m|
        target = m.singleton? ? klass.singleton_class : klass
        assert target.method_defined?(m.name) || target.private_method_defined?(m.name),
               "#{name}#{m.singleton? ? "." : "#"}#{m.name} is declared in sig/ but not defined"
        checked += 1
      end
      next if klass <= Exception

      public_methods = klass.public_instance_methods(false).reject { |n| n.start_with?("__") || n == :inspect }
      declared = decl.members.grep(RBS::AST::Members::MethodDefinition).reject(&:singleton?).map(&:name)
      declared += decl.members.grep(RBS::AST::Members::AttrReader).map(&:name)
      assert_empty public_methods - declared, "#{name} methods missing from sig/"
    end
    assert_operator checked, :>, 60
  end
end
