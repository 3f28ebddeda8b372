#!/usr/bin/perl
# Verifies a sftriggerd webhook with core Perl modules (Digest::SHA, MIME::Base64, JSON::PP).
#
# Usage: perl verify.pl vector.json   (exit 0 when the signature holds, 1 when not)
#
# In a receiver, pass the request's raw body bytes exactly as received, never a re-encoded
# JSON structure, and its webhook-id, webhook-timestamp and webhook-signature headers;
# answer 2xx only after it returns true.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64 encode_base64);
use JSON::PP ();

my $TOLERANCE_S = 5 * 60;    # refuse timestamps further than this from now: replays

sub same_text {    # compares in time that does not depend on where they differ
    my ($a, $b) = @_;
    return 0 if length($a) != length($b);
    my $diff = 0;
    $diff |= ord(substr($a, $_, 1)) ^ ord(substr($b, $_, 1)) for 0 .. length($a) - 1;
    return $diff == 0;
}

sub verify {
    my ($secret, $msg_id, $timestamp, $body, $signature_header, $now_s) = @_;
    return 0 unless $timestamp =~ /\A[0-9]+\z/;
    return 0 if abs($now_s - $timestamp) > $TOLERANCE_S;
    (my $encoded_key = $secret) =~ s/\Awhsec_//;
    my $key = decode_base64($encoded_key);
    my $expected = encode_base64(hmac_sha256("$msg_id.$timestamp.$body", $key), '');
    # The header may hold several signatures ("v1,<a> v1,<b>") while a secret is rotated:
    # one that matches is enough.
    for my $candidate (split / /, $signature_header) {
        my ($version, $signature) = split /,/, $candidate, 2;
        next unless defined $signature && $version eq 'v1';
        return 1 if same_text($signature, $expected);
    }
    return 0;
}

open(my $file, '<:raw', $ARGV[0]) or die "cannot read $ARGV[0]: $!\n";
my $vector = JSON::PP->new->utf8->decode(do { local $/; <$file> });
my $body = $vector->{body};
utf8::encode($body);    # the bytes as sent: UTF-8
my $ok = verify($vector->{secret}, $vector->{id}, "$vector->{timestamp}", $body,
    $vector->{signature}, $vector->{now} // time());
print $ok ? "verified\n" : "NOT verified\n";
exit($ok ? 0 : 1);
